"""The kit's own files, and copying them into a repository (`make install-kit`, tests, bench)."""

from __future__ import annotations

import shutil
from pathlib import Path

KIT_FILES = ("Makefile", "Dockerfile", "scripts")
GITIGNORE_LINES = ("/lambda-kit/.lambda-kit/", "/build.zip")


def copy_kit(kit_dir: Path, dest: Path) -> Path:
    """Put the kit's files in `dest` (replacing an older copy of them, nothing else)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in KIT_FILES:
        source, target = kit_dir / name, dest / name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return dest


def install_into(kit_dir: Path, repo: Path) -> Path:
    """`make install-kit`: the kit in repo/lambda-kit/, its state ignored by git; the repo's own
    files (its Makefile included) are left alone."""
    installed = copy_kit(kit_dir, repo / "lambda-kit")
    gitignore = repo / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    missing = [line for line in GITIGNORE_LINES if line not in lines]
    if missing:
        with open(gitignore, "a", encoding="utf-8") as f:
            if lines and not gitignore.read_text(encoding="utf-8").endswith("\n"):
                f.write("\n")
            f.write("".join(line + "\n" for line in missing))
    return installed
