"""Network settings for pip inside the build: private index, extra indexes, extra CA bundle.

The host helper hands them over as files. With BuildKit they are secret mounts under
/run/secrets (never stored in a layer, never in `docker history`); on the legacy builder the
helper refuses credentials and the CA bundle, a public certificate, comes in through the build
context under /opt/lambda-kit/net. The extra CA is added to pip's own bundle, not put in its place.

Standard library only: it runs with the base image's python before the kit's tools exist, with
contract.py copied beside it.
Usage: python3 netconfig.py COMMAND [ARG...]   runs COMMAND with PIP_* set, then cleans up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    from . import contract
except ImportError:  # run as a script (the tools layer, the smoke image): contract.py is beside it
    import contract


def _first_existing(name: str) -> Path | None:
    for folder in (Path(contract.SECRETS), Path(contract.NET)):
        path = folder / name
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def read_settings() -> dict[str, str]:
    path = _first_existing(contract.PIP_SETTINGS_ID)
    return contract.parse_settings(path.read_text(encoding="utf-8")) if path else {}


def _default_bundle() -> str | None:
    try:
        from pip._vendor import certifi  # the bundle pip would otherwise use
    except ImportError:
        return None
    return certifi.where()


def pip_environment(lock_sources: list[str] | None = None) -> tuple[dict[str, str], list[Path]]:
    """PIP_* variables from the settings handed into the build; the second item lists temporary
    files to remove when pip is done."""
    return pip_environment_for(read_settings(), _first_existing(contract.CA_BUNDLE_ID), lock_sources)


def pip_environment_for(
    settings: dict[str, str], extra_ca: Path | None, lock_sources: list[str] | None = None
) -> tuple[dict[str, str], list[Path]]:
    """PIP_* variables for the kit's settings (INDEX_URL, EXTRA_INDEX_URLS, ENV_<name> values for
    `${name}` in the lock's sources) and an extra CA bundle, which is added to pip's own."""
    variables = contract.settings_variables(settings)
    sources = [contract.expand(u, variables) for u in (lock_sources or [])]
    index = settings.get(contract.INDEX_URL) or (sources[0] if sources else "")
    extras = sources[1:] + settings.get(contract.EXTRA_INDEX_URLS, "").split()
    env: dict[str, str] = {}
    if index:
        env["PIP_INDEX_URL"] = index
    if extras:
        env["PIP_EXTRA_INDEX_URL"] = " ".join(dict.fromkeys(extras))
    cleanup: list[Path] = []
    if extra_ca:
        fd, combined = tempfile.mkstemp(prefix="lambda-kit-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as out:
            default = _default_bundle()
            if default:
                out.write(Path(default).read_bytes().rstrip(b"\n") + b"\n")
            out.write(Path(extra_ca).read_bytes())
        env["PIP_CERT"] = combined
        cleanup.append(Path(combined))
    return env, cleanup


def run_with_network(argv: list[str], lock_sources: list[str] | None = None) -> int:
    env, cleanup = pip_environment(lock_sources)
    try:
        return subprocess.call(argv, env={**os.environ, **env})
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(run_with_network(sys.argv[1:]))
