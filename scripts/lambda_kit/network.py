"""The network settings the host hands to pip, in the image or in the local builder: a private
index, extra indexes, an extra CA bundle, and the values of the `${VAR}`s the lock's sources use.
They travel as BuildKit secrets (`secret_files`), or as files under the build context's net/ for the
legacy builder, in the format contract.py defines; netconfig.py reads them on the other side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import contract
from .errors import UsageError


@dataclass(frozen=True)
class NetworkSettings:
    index_url: str = ""
    extra_index_urls: list[str] = field(default_factory=list)
    ca_bundle: Path | None = None
    lock_source_env: dict[str, str] = field(default_factory=dict)  # ${VAR}s the lock's sources use

    def has_credentials(self) -> bool:
        urls = [self.index_url, *self.extra_index_urls]
        return bool(self.lock_source_env) or any(u and "@" in urlsplit(u).netloc for u in urls)

    def settings_text(self) -> str:
        """The network settings file handed into the build (contract.settings_text)."""
        return contract.settings_text(self.index_url, self.extra_index_urls, self.lock_source_env)


def lock_source_variables(lock: dict, environ: dict[str, str]) -> dict[str, str]:
    """Values of the environment variables the lock's [[source]] URLs refer to (pipenv expands
    `${VAR}` there, typically for index credentials)."""
    names = set()
    for source in lock.get("_meta", {}).get("sources", []):
        names.update(contract.referenced_names(source.get("url", "")))
    missing = sorted(n for n in names if n not in environ)
    if missing:
        raise UsageError(
            "Pipfile.lock's sources use environment variables that are not set",
            ", ".join(missing),
            hint="export them before `make package` (they reach the build as BuildKit secrets only)",
        )
    return {n: environ[n] for n in sorted(names)}


def secret_files(folder: Path, network: NetworkSettings) -> dict[str, Path]:
    """For BuildKit: write the settings as files (mode 0600) to pass with --secret."""
    files: dict[str, Path] = {}
    if network.ca_bundle:
        files[contract.CA_BUNDLE_ID] = network.ca_bundle
    text = network.settings_text()
    if text:
        path = folder / contract.PIP_SETTINGS_ID
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        files[contract.PIP_SETTINGS_ID] = path
    return files
