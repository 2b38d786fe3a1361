"""A newcomer's first run through make: check and clean leave a zip the kit did not write alone,
and package refuses to replace it."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from helpers import make


def foreign_zip(path: Path) -> bytes:
    """A zip the kit did not write, older than every project file (make would call it out of date)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return 'theirs'\n")
    os.utime(path, (946684800, 946684800))  # 2000-01-01
    return path.read_bytes()


def test_check_and_clean_leave_a_foreign_zip_alone_and_package_refuses_it(sample):
    theirs = sample / "x.zip"
    before = foreign_zip(theirs)
    check = make(sample, "check", "ZIP=x.zip")
    assert "lambda-kit: audit of" in check.stdout and theirs.read_bytes() == before
    package = make(sample, "package", "ZIP=x.zip")
    assert package.returncode != 0
    assert package.stderr.splitlines()[0] == (
        f"lambda-kit: error: refusing to replace a zip the kit did not write (or that changed since) ({theirs})"
    )
    assert package.stderr.splitlines()[1].startswith("hint: move it away or delete it")
    assert "Traceback" not in package.stderr and theirs.read_bytes() == before
    clean = make(sample, "clean", "ZIP=x.zip")
    assert clean.returncode == 0 and f"kept {theirs} (not written by the kit)" in clean.stdout
    assert theirs.read_bytes() == before
