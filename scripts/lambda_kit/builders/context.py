"""Stage the minimal build context the Dockerfile expects, in a temporary folder.

    Dockerfile                     the kit's (for the legacy builder: without `--mount=` options)
    setup/kit/: container-requirements.txt, lambda_kit/{common,net}/ (contract.TOOLS_PACKAGES)
    build/kit/lambda_kit/: the rest of contract.BUILD_PACKAGES
    net/                           legacy builder only: CA bundle and index settings (no secrets)
    project/Pipfile, Pipfile.lock  nothing else of the user's repo before the dependencies
    paths/<n>/, paths/map.json     local path dependencies named in the lock
    wheels/                        files kept from earlier builds that the lock still names

The function's code is not in the context: the host adds it to the packed dependencies. The
network settings travel as BuildKit secrets instead (network.secret_files), or under net/ for the
legacy builder.

Only what the build needs is sent to the engine (never .git, old zips, virtualenvs), and a change
outside these files cannot invalidate the docker cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from lambda_kit.common import contract
from lambda_kit.common.digests import sha256_hex
from lambda_kit.common.errors import UsageError
from lambda_kit.lock.lockfile import Lock
from lambda_kit.plan.network import NetworkSettings, write_ca
from lambda_kit.steps.bytecode import PROFILE_NAME

# What a local path dependency's folder leaves out of the build context (its build outputs and tool
# caches: pip builds the package from its sources). Never applied to the function's own code.
PATH_DEPENDENCY_SKIPPED_PARTS = {
    "__pycache__",
    ".git",
    ".hg",
    ".svn",
    ".venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    "build",
    "dist",
    "node_modules",
}
PATH_DEPENDENCY_SKIPPED = shutil.ignore_patterns(*PATH_DEPENDENCY_SKIPPED_PARTS, "*.pyc", "*.pyo", "*.egg-info")
MOUNT_OPTION = re.compile(r"--mount=\S+\s*")


def legacy_dockerfile(text: str) -> str:
    """The kit's Dockerfile without BuildKit-only `RUN --mount=` options."""
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            out.append(line)
            continue
        stripped = MOUNT_OPTION.sub("", line)
        if stripped != line and stripped.strip() == "\\":
            continue
        out.append(stripped.rstrip() if stripped != line else line)
    return "\n".join(out) + "\n"


def _stage_network(ctx: Path, buildkit: bool, network: NetworkSettings) -> None:
    net = ctx / "net"
    net.mkdir()
    if not buildkit:
        # Legacy builder: the settings travel in the context (credentials were refused earlier).
        write_ca(network, net / contract.CA_BUNDLE_ID)
        if network.settings_text():
            (net / contract.PIP_SETTINGS_ID).write_text(network.settings_text(), encoding="utf-8")


def copy_packages(kit_dir: Path, dest: Path, packages: tuple[str, ...], with_init: bool = True) -> None:
    """The kit's package folders named (whole, bytecode aside) into dest/lambda_kit, with the package's
    __init__.py unless an earlier step of the image brought it."""
    package = kit_dir / "scripts" / "lambda_kit"
    (dest / "lambda_kit").mkdir(parents=True, exist_ok=True)
    if with_init:
        shutil.copy2(package / "__init__.py", dest / "lambda_kit" / "__init__.py")
    for name in packages:
        shutil.copytree(
            package / name, dest / "lambda_kit" / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )


def image_modules(kit_dir: Path) -> list[str]:
    """The kit's files the build image runs (contract.BUILD_PACKAGES), relative to kit_dir, sorted."""
    package = kit_dir / "scripts" / "lambda_kit"
    files = [package / "__init__.py"]
    for name in contract.BUILD_PACKAGES:
        files += (package / name).rglob("*.py")
    return sorted(str(f.relative_to(kit_dir)) for f in files if "__pycache__" not in f.parts)


def stage_smoke(ctx: Path, *, kit_dir: Path, buildkit: bool, network: NetworkSettings) -> None:
    """The smoke image's context: its Dockerfile, awslambdaric's pins and what installs them
    (setup/), the runner and its zip reader (run/), network settings (net/)."""
    ctx.mkdir(parents=True, exist_ok=True)
    dockerfile = (kit_dir / "scripts" / "smoke.Dockerfile").read_text(encoding="utf-8")
    (ctx / "Dockerfile").write_text(dockerfile if buildkit else legacy_dockerfile(dockerfile), encoding="utf-8")
    (ctx / "setup").mkdir()
    shutil.copy2(kit_dir / "scripts" / "smoke-requirements.txt", ctx / "setup")
    copy_packages(kit_dir, ctx / "setup", contract.TOOLS_PACKAGES)
    copy_packages(kit_dir, ctx / "run", contract.SMOKE_STEP_PACKAGES, with_init=False)  # setup/ brought it
    _stage_network(ctx, buildkit, network)


def _copy_tree(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, ignore=PATH_DEPENDENCY_SKIPPED, symlinks=False)


def stage_build(
    ctx: Path,
    *,
    kit_dir: Path,
    pipfile: Path,
    lock: Lock,
    buildkit: bool,
    network: NetworkSettings,
    wheelhouse: Path | None = None,
    profile: list[str] = (),
    lock_json: bytes | None = None,
    project_dir: Path | None = None,
) -> None:
    """The build context: the Dockerfile and two folders laid out as /opt/lambda-kit, each copied
    in one step (a step is a container and a commit for the legacy builder). setup/ is what the
    tools layer needs (the network settings, the tools' pins, netconfig and the contract); build/ is the rest (the
    kit's container modules, the lock, local path dependencies, the wheelhouse's files)."""
    ctx.mkdir(parents=True, exist_ok=True)
    dockerfile = (kit_dir / "Dockerfile").read_text(encoding="utf-8")
    (ctx / "Dockerfile").write_text(dockerfile if buildkit else legacy_dockerfile(dockerfile), encoding="utf-8")

    setup, build = ctx / "setup", ctx / "build"
    (setup / "kit").mkdir(parents=True)
    shutil.copy2(kit_dir / "scripts" / "container-requirements.txt", setup / "kit")
    copy_packages(kit_dir, setup / "kit", contract.TOOLS_PACKAGES)  # netconfig and what it imports
    _stage_network(setup, buildkit, network)

    # The rest of what runs in the image (the tools layer holds the TOOLS_PACKAGES already).
    copy_packages(kit_dir, build / "kit", contract.BUILD_STEP_PACKAGES, with_init=False)

    project = build / "project"
    project.mkdir()
    # The lock model the build reads (`lock_json`: any format's, as Pipfile.lock), else the Pipfile's lock.
    if pipfile.is_file():
        shutil.copyfile(pipfile, project / "Pipfile")
    if lock_json is None:
        shutil.copyfile(pipfile.with_name(pipfile.name + ".lock"), project / "Pipfile.lock")
    else:
        (project / "Pipfile.lock").write_bytes(lock_json)
    project_dir = project_dir or pipfile.parent
    if profile:  # COMPILE=1's import profile (only then: it must not touch other builds' layers)
        (project / PROFILE_NAME).write_text("".join(n + "\n" for n in profile), encoding="utf-8")

    paths = build / "paths"
    paths.mkdir()
    mapping = {}
    # Numbered by place among all of `default`'s names, as the image's paths/map.json has always had
    # it (pip records the folder it installed from).
    for index, (name, entry) in enumerate(sorted(lock.data.get("default", {}).items())):
        if not isinstance(entry, dict) or "path" not in entry:
            continue
        local = (project_dir / entry["path"]).resolve()
        staged = paths / str(index)
        if local.is_dir():
            _copy_tree(local, staged)
            mapping[entry["path"]] = f"{contract.PATHS}/{index}"
        elif local.is_file():
            staged.mkdir()
            shutil.copy2(local, staged / local.name)
            mapping[entry["path"]] = f"{contract.PATHS}/{index}/{local.name}"
        else:
            raise UsageError(
                f"local path dependency {name} does not exist",
                entry["path"],
                hint="fix the path in the project file and lock again",
            )
    (paths / contract.PATHS_MAP.name).write_text(json.dumps(mapping, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    wheels = build / "out" / "wheels"
    wheels.mkdir(parents=True)
    files = wheelhouse_files(wheelhouse, lock)
    if wheelhouse is not None and (wheelhouse / contract.WHEEL_CHOICES).is_file():
        files.append(wheelhouse / contract.WHEEL_CHOICES)  # which of them pip chose, per target
    for path in files:
        if _same_device(path, wheels):
            os.link(path, wheels / path.name)  # cheap: the context is read, never written
        else:
            shutil.copy2(path, wheels / path.name)


def wheelhouse_files(wheelhouse: Path | None, lock: Lock) -> list[Path]:
    """Files kept from earlier builds that the lock still names (by hash): the build reuses them
    instead of downloading them again."""
    if wheelhouse is None or not wheelhouse.is_dir():
        return []
    wanted = set(lock.file_digests())
    return [p for p in sorted(wheelhouse.iterdir()) if p.is_file() and sha256_hex(p) in wanted]


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev
