"""One temporary folder per run, under the kit's state folder: <state>/tmp/run-<pid>-<random>/.

Everything a run writes for a while goes there: Python's tempfile (tempfile.tempdir) and, through
TMPDIR, pip's own pip-target-* and pip-unpack-* folders. The run removes it when it ends, by error
or signal too; a run killed outright (SIGKILL, power loss) leaves it, and the next run removes
every folder whose process is gone. `make clean` removes the state folder, these with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

RUN_FOLDER = re.compile(r"^run-(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def clean_stale(root: Path) -> None:
    """Remove the run folders of processes that are gone."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        found = RUN_FOLDER.match(folder.name)
        if found and int(found.group(1)) != os.getpid() and not _alive(int(found.group(1))):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _own_folder(root: Path) -> Iterator[Path]:
    """run-<pid>-<random>/ under `root`, removed at the end; the folders of processes that are
    gone (a run killed outright) removed first."""
    clean_stale(root)
    folder = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def run_folder(state_dir: Path) -> Iterator[Path]:
    root = state_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    with _own_folder(root) as folder:
        saved = tempfile.tempdir, os.environ.get("TMPDIR")
        tempfile.tempdir, os.environ["TMPDIR"] = str(folder), str(folder)
        try:
            yield folder
        finally:
            tempfile.tempdir = saved[0]
            if saved[1] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved[1]


# The dependency tree is thousands of small files written once, read once and deleted: on a disk
# file system each create and unlink costs about a millisecond here, in memory a twentieth of that.
# A build puts the tree in memory when a memory file system has room for it, else on disk.
SCRATCH_ROOM = 1 << 30  # free bytes a memory folder must have: Lambda's 250 MB unzipped limit, four times
MEMORY_FOLDERS = ("/dev/shm",)


def memory_folder(candidates: tuple[str, ...] = MEMORY_FOLDERS, room: int = SCRATCH_ROOM) -> Path | None:
    """The first candidate that is a writable folder with `room` free bytes; LAMBDA_KIT_SCRATCH
    names another folder (or `disk` for none: the tree then goes where tempfile puts it)."""
    chosen = os.environ.get("LAMBDA_KIT_SCRATCH", "")
    if chosen == "disk":
        return None
    for folder in (chosen,) if chosen else candidates:
        try:
            stats = os.statvfs(folder)
        except OSError:
            continue
        if os.access(folder, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= room:
            return Path(folder)
    return None


@contextlib.contextmanager
def scratch(prefix: str, candidates: tuple[str, ...] = MEMORY_FOLDERS) -> Iterator[Path]:
    """A folder for a build's dependency tree, in memory when there is room (see memory_folder),
    removed afterwards; a run killed outright leaves it, and the next run removes the folders of
    processes that are gone (as run_folder does)."""
    root = _private_root(memory_folder(candidates))
    if root is None:
        with tempfile.TemporaryDirectory(prefix=prefix) as folder:
            yield Path(folder)
        return
    with _own_folder(root) as folder:
        yield folder


def _private_root(memory: Path | None) -> Path | None:
    """This user's folder in the memory folder, made 0700; None when there is no memory folder or
    the name is someone else's (or a link) in a shared folder: not ours to use."""
    if memory is None:
        return None
    root = memory / f"lambda-kit-{os.getuid()}"
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    return root if _private_folder(root) else None


def _private_folder(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077 == 0
