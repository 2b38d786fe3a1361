"""BUILDER=local: the same build steps on the host, without Docker, for locks whose every package
has a binary wheel for the target platform.

pip installs wheels for another platform when told the target exactly: each manylinux tag the
runtime's glibc accepts (from the runtime table), the Python version, `cp` and the ABIs, and
`--only-binary=:all:`. Markers are evaluated for the runtime, not the host. The pip is the
container's pin, in the helper's own environment (scripts/requirements.txt), so a cold local build
sets nothing up; the wheel installer, the zip writer and the audit are the same code, so both
builders give the same bytes for the same inputs (with the same zlib).
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

from lambda_kit.common import contract, tempdirs
from lambda_kit.common.errors import StepError
from lambda_kit.net import netconfig
from lambda_kit.plan.buildplan import BuildPlan
from lambda_kit.plan.network import NetworkSettings, write_ca
from lambda_kit.steps import buildsteps
from lambda_kit.steps.target import Target
from lambda_kit.steps.toolchain import Toolchain


def build_network(network: NetworkSettings, folder: Path) -> netconfig.BuildNetwork:
    """What the image reads, through the same file format: the settings file's values, the extra
    CA bundles as one file, pip's client certificate."""
    settings = contract.parse_settings(network.settings_text())
    ca = write_ca(network, folder / contract.CA_BUNDLE_ID, skip=(ssl.get_default_verify_paths().cafile,))
    return netconfig.BuildNetwork(settings, ca, Path(network.pip.client_cert) if network.pip.client_cert else None)


def build(
    plan: BuildPlan, network: NetworkSettings, out: Path, log_path: Path, no_wheel_hint: str | None = None
) -> None:
    """Writes what the Docker build leaves in its out/ folder: deps.zip (+ .sha256)."""
    s, runtime, arch = plan.settings, plan.runtime, plan.settings.arch
    with (
        open(log_path, "a", encoding="utf-8", buffering=1) as log,
        tempdirs.scratch(prefix="lambda-kit-local-") as work,
    ):
        tools = Toolchain(
            python=Path(sys.executable),  # the helper's environment: the pinned pip
            network=build_network(network, work),
            target=Target(runtime, arch),  # binary wheels only: nothing is compiled on the host
            cache_dir=str(s.cache / "pip-cache"),  # the machine's, as the wheelhouse
            wheelhouse=plan.wheelhouse,
            echo=log.write,
            fetch=s.fetch_mode(),
        )
        if no_wheel_hint:
            tools.no_wheel_hint = no_wheel_hint
        # The same input as the Docker build: the lock model, as project/Pipfile.lock.
        project = work / "project"
        project.mkdir()
        (project / "Pipfile.lock").write_bytes(plan.lock_bytes())

        def local_path(lock_path: str) -> str:
            return str((plan.project_dir / lock_path).resolve())

        try:
            out.mkdir(parents=True, exist_ok=True)
            # COMPILE=1: the host runs the runtime's Python (compiling.check)
            buildsteps.build_dependencies(
                tools,
                project,
                work / "deps",
                local_path,
                out / contract.DEPS_ZIP,
                slim=s.slim,
                compile_deps=s.compile,
                profile=list(plan.profile),
            )
        except StepError as exc:
            raise exc.with_log(log_path) from None
