"""BUILDER=local: the same build steps on the host, without Docker, for locks whose every package
has a binary wheel for the target platform.

pip installs wheels for another platform when told the target exactly: each manylinux tag the
runtime's glibc accepts (from the runtime table), the Python version, `cp` and the ABIs, and
`--only-binary=:all:`. Markers are evaluated for the runtime, not the host. The tools are the
container's pinned pip and pipenv, in a venv under the kit's state folder; the zip writer and the
audit are the same code, so both builders give the same bytes for the same inputs (with the same
zlib).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

from . import buildsteps, contract, netconfig, runtimes, slimming
from .network import NetworkSettings
from .errors import KitError, StepError
from .runner import CommandFailed, Run


def tools_venv(state_dir: Path, kit_dir: Path, network: NetworkSettings, run: Run) -> Path:
    """A venv of the host's Python with the pinned pip and pipenv (the container's list)."""
    requirements = kit_dir / "scripts" / "container-requirements.txt"
    stamp = hashlib.sha256(sys.version.encode() + requirements.read_bytes()).hexdigest()
    venv = state_dir / "local-tools"
    python = venv / "bin" / "python"
    stamp_file = venv / "lambda-kit.stamp"

    def current() -> bool:
        return stamp_file.is_file() and stamp_file.read_text().strip() == stamp and python.exists()

    if current():
        return venv
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # runs started together: one builds, the others wait and reuse it
        if not current():
            _make_tools_venv(venv, python, requirements, network, run)
            stamp_file.write_text(stamp + "\n")
    return venv


def _make_tools_venv(venv: Path, python: Path, requirements: Path, network: NetworkSettings, run: Run) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    env, cleanup = pip_env(network)([])
    try:
        run([sys.executable, "-m", "venv", str(venv)], timeout=300)
        run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes", "--only-binary=:all:",
             "--no-compile", "-r", str(requirements)], timeout=900, env={**env, "PIP_CONFIG_FILE": os.devnull})  # fmt: skip
    except CommandFailed as exc:
        shutil.rmtree(venv, ignore_errors=True)
        raise KitError("cannot install the local builder's tools", " | ".join(exc.tail[-2:]),
                       hint="check access to PyPI, or set INDEX_URL / CA_BUNDLE") from None  # fmt: skip
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)


def pip_env(network: NetworkSettings) -> Callable[[list[str]], tuple[dict[str, str], list[Path]]]:
    settings = contract.parse_settings(network.settings_text())  # what the image reads, through the same file format

    def environment(lock_sources: list[str]) -> tuple[dict[str, str], list[Path]]:
        env, cleanup = netconfig.pip_environment_for(settings, network.ca_bundle, lock_sources)
        # As in the container: the host's pip configuration files do not change what is installed.
        env["PIP_CONFIG_FILE"] = os.devnull
        return env, cleanup

    return environment


def build(
    *,
    kit_dir: Path,
    state_dir: Path,
    pipfile: Path,
    runtime: runtimes.Runtime,
    arch: str,
    network: NetworkSettings,
    out: Path,
    wheelhouse: Path,
    log_path: Path,
    run: Run,
    slim: bool = False,
    no_wheel_hint: str | None = None,
    compile_deps: bool = False,
    profile: list[str] = (),
) -> None:
    """Writes what the Docker build leaves in its out/ folder: deps.zip (+ .sha256)."""
    venv = tools_venv(state_dir, kit_dir, network, run)
    with (
        open(log_path, "a", encoding="utf-8", buffering=1) as log,
        tempfile.TemporaryDirectory(prefix="lambda-kit-local-") as tmp,
    ):
        work = Path(tmp)
        tools = buildsteps.Toolchain(
            python=venv / "bin" / "python",
            pipenv=venv / "bin" / "pipenv",
            pip_env=pip_env(network),
            environment=runtimes.target_environment(runtime, arch),
            target_args=runtimes.pip_target_args(runtime, arch),
            target_name=f"{runtime.name} {arch}",
            cache_dir=str(state_dir / "pip-cache"),
            wheelhouse=wheelhouse,
            echo=log.write,
        )
        if no_wheel_hint:
            tools.no_wheel_hint = no_wheel_hint
        # The same inputs as the Docker build: a Pipfile/lock pair in a folder of their own.
        project = work / "project"
        project.mkdir()
        shutil.copyfile(pipfile, project / "Pipfile")
        shutil.copyfile(pipfile.with_name(pipfile.name + ".lock"), project / "Pipfile.lock")

        def local_path(lock_path: str) -> str:
            return str((pipfile.parent / lock_path).resolve())

        try:
            out.mkdir(parents=True, exist_ok=True)
            buildsteps.install_dependencies(tools, project, work / "deps", local_path)
            if slim:
                slimming.slim(work / "deps", shutil.which("strip"))
            if compile_deps:  # the host runs the runtime's Python (compiling.check)
                buildsteps.compile_dependencies(work / "deps", profile)
            buildsteps.pack_dependencies(work / "deps", out / contract.DEPS_ZIP, compiled=compile_deps)
        except StepError as exc:
            raise exc.with_log(log_path) from None
