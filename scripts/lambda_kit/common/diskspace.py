"""A full disk is one line, never an internal error: which folder's file system filled, how much is
free there, and about how much the step needs. Whatever the step had half written is removed by its
own cleanup (temporary folders, partial downloads); complete, checked files (the wheelhouse's,
a cache entry) stay for the next run. Standard library only: the host and the build image.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lambda_kit.common.errors import StepError

FULL = (errno.ENOSPC, errno.EDQUOT)


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size:,} bytes"


def free(folder: Path) -> int | None:
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def folder_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


@contextmanager
def guard(step: str, folders: list[Path], need: Callable[[], int] | None = None, hint: str = "") -> Iterator[None]:
    """Around a step that writes into `folders`: a full file system (ENOSPC, EDQUOT) becomes one
    StepError naming the folder that filled (the error's own file's, else the fullest of them)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        named = [Path(f).parent for f in (exc.filename, exc.filename2) if f]
        candidates = [f for f in named + folders if free(f) is not None]
        folder = min(candidates, key=lambda f: free(f) or 0) if candidates else (folders or [Path(".")])[0]
        left = free(folder)
        try:
            wanted = need() if need else 0
        except OSError:
            wanted = 0
        needs = f"; it needs about {megabytes(wanted)}" if wanted else ""
        raise StepError(
            f"no space left on the file system of {folder} while {step} ({megabytes(left or 0)} free once the "
            f"step's temporary files were removed){needs}",
            hint
            or "free space there, or set KIT_CACHE (wheelhouse, dependency zips) or KIT_STATE (temporary files) "
            "to a larger file system",
        ) from None
