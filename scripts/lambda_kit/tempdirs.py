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
def run_folder(state_dir: Path) -> Iterator[Path]:
    root = state_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    clean_stale(root)
    folder = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=root))
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
        shutil.rmtree(folder, ignore_errors=True)
