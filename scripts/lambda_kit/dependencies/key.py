"""The dependency key: what the packed dependencies depend on, so a cached deps.zip is reused exactly
when a build would give the same bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lambda_kit.builders.context import PATH_DEPENDENCY_SKIPPED_PARTS, image_modules
from lambda_kit.lock import lockformats
from lambda_kit.plan.buildplan import BuildPlan


def dependency_key(plan: BuildPlan, builder: str) -> str:
    """What the dependency part of the zip depends on: the Pipfile and lock, local path
    dependencies, the kit's in-container code and tools, the builder, runtime, architecture and
    base image. Index URLs are left out: the lock's hashes pin the files whatever their source."""
    s, digest = plan.settings, hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode() + data)

    add(
        "builder",
        f"{builder} {plan.runtime.version} {s.arch} {s.base_image} slim={s.slim} compile={s.compile}".encode(),
    )
    add("Pipfile", plan.project_bytes())
    add("profile", "\n".join(plan.profile).encode())
    add("Pipfile.lock", plan.lock_path.read_bytes())
    if plan.lock_choice.format != lockformats.PIPFILE:  # what was read of it for this target and selection
        add("lock model", plan.lock_bytes())
    for name in (
        "Dockerfile",
        "scripts/container-requirements.txt",
        *image_modules(s.kit_dir),
    ):
        add(name, (s.kit_dir / name).read_bytes())
    for entry in sorted(path for _, path in plan.lock.local_paths()):
        local = (plan.project_dir / entry).resolve()
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file() and not _ignored(p))
        for path in files:
            add(f"path:{entry}:{path.relative_to(local.parent)}", path.read_bytes())
    return digest.hexdigest()


def _ignored(path: Path) -> bool:
    """What the build context leaves out of a local path dependency (context.PATH_DEPENDENCY_SKIPPED)."""
    return (
        bool(PATH_DEPENDENCY_SKIPPED_PARTS & set(path.parts))
        or path.suffix in (".pyc", ".pyo")
        or any(part.endswith(".egg-info") for part in path.parts)
    )
