"""The build steps as the Dockerfile runs them, inside the build image.

    python -m lambda_kit.steps.incontainer deps   # verify the lock, install [packages], pack out/deps.zip

Failures print `lambda-kit: error: ...` and `hint: ...`, which the host helper lifts out of the
build log, and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from lambda_kit.common import contract, diskspace, runtimes, tempdirs
from lambda_kit.common.errors import KitError, StepError
from lambda_kit.net import netconfig
from lambda_kit.steps import buildsteps, bytecode, toolchain
from lambda_kit.steps.target import Target

OUT = Path(contract.OUT)  # what the helper copies out: deps.zip (+ .sha256), wheels/
PIP_CACHE = "/root/.cache/pip"
SCRATCH_CANDIDATES = (str(contract.SCRATCH), "/dev/shm")  # the Dockerfile's tmpfs mount; docker build --shm-size


def container_toolchain(target: str, fetch: str = "kit") -> toolchain.Toolchain:
    machine = os.uname().machine
    here = runtimes.arch_of_machine(machine)
    runtime = runtimes.lookup("{}.{}".format(*sys.version_info[:2]))
    cross: dict[str, Any]  # the Toolchain's settings for this target
    if target and target != here:
        # No emulation: this image's Python installs binary wheels for the target architecture.
        cross = dict(
            target=Target(runtime, target),
            no_wheel_hint=f"pin a version with a {target} wheel, "
            f"or build on an {target} Docker engine, which can compile it",
        )
    else:
        if here is None:
            raise StepError(
                f"the build image runs on {machine}, not on an architecture Lambda has",
                "build on an x86_64 or arm64 Docker engine",
            )
        # The target's own machine: the runtime's manylinux tags, not this image's glibc (a Debian
        # image would take manylinux_2_28 wheels a 2.26 runtime cannot load); pip builds sdists here.
        cross = dict(
            target=Target(runtime, here, sources_allowed=True),
            no_wheel_hint="pin versions that exist for this runtime and run `pipenv lock`",
        )
    return toolchain.Toolchain(
        **cross,
        python=Path(contract.TOOLS_BIN, "python"),
        fetch=fetch,
        network=netconfig.BuildNetwork.current(),
        wheelhouse=OUT / contract.WHEELS,  # seeded from the host's wheelhouse through the context
        # BuildKit mounts a download cache here; without one, keep downloads out of the layer.
        cache_dir=PIP_CACHE if os.path.ismount(PIP_CACHE) else None,
    )


def check_interpreter(expected: str) -> None:
    """The base image must run the runtime's Python: markers and wheels are chosen for it."""
    running = "{}.{}".format(*sys.version_info[:2])
    if expected and running != expected:
        raise StepError(
            f"the base image runs Python {running}, but the runtime is python{expected}",
            "set BASE_IMAGE to a build image for that runtime, or PYTHON_VERSION to the image's",
        )


def staged_paths(paths_map: Path):
    mapping = json.loads(paths_map.read_text(encoding="utf-8")) if paths_map.is_file() else {}

    def local_path(lock_path: str) -> str:
        if lock_path not in mapping:
            raise StepError(f"a local path dependency was not staged ({lock_path})", "report this as a kit bug")
        return mapping[lock_path]

    return local_path


def staged_profile(project: Path) -> list[str]:
    """COMPILE=1's profile, staged beside the lock (checked on the host already)."""
    path = project / bytecode.PROFILE_NAME
    try:
        return bytecode.read_profile(path) if path.is_file() else []
    except ValueError as exc:
        raise StepError(f"the import profile is not valid ({exc})", "record it again: make profile") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lambda_kit.steps.incontainer")
    sub = parser.add_subparsers(dest="step", required=True)
    deps = sub.add_parser("deps")
    deps.add_argument("--project", type=Path, default=Path(contract.PROJECT))
    deps.add_argument("--paths-map", type=Path, default=Path(contract.PATHS_MAP))
    deps.add_argument("--packed", type=Path, default=OUT / contract.DEPS_ZIP)
    args = parser.parse_args(argv)
    try:
        build = contract.BuildArguments.from_environment(os.environ)
        check_interpreter(build.python_version)
        # The tree in memory (BuildKit's tmpfs mount, or /dev/shm, which the legacy builder is given
        # room in): never in the layer, and no disk file system paying for thousands of small files.
        with (
            diskspace.guard(
                "building the dependencies",
                [OUT, *map(Path, SCRATCH_CANDIDATES)],
                hint="free space in Docker's storage (docker system df)",
            ),
            tempdirs.scratch("deps-", SCRATCH_CANDIDATES) as work,
        ):
            tree = work / "deps"
            tools = container_toolchain(build.target_arch, build.fetch)
            profile = staged_profile(args.project) if build.compile else []
            buildsteps.build_dependencies(
                tools,
                args.project,
                tree,
                staged_paths(args.paths_map),
                args.packed,
                slim=build.slim,
                compile_deps=build.compile,
                profile=profile,
            )
    except KitError as exc:
        print("\n".join(exc.lines()), file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001  a kit bug: the traceback for the build log, one line for the user
        traceback.print_exc(file=sys.stdout)
        what = f"{type(exc).__name__}: {str(exc)[:300]!r} in the build's {args.step} step"
        print(contract.INTERNAL_ERROR_PREFIX + what, file=sys.stderr, flush=True)
        print(contract.HINT_PREFIX + "the traceback is in the build log; please report it", file=sys.stderr, flush=True)
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
