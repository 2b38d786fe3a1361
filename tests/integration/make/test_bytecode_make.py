"""COMPILE=1 through make: an import profile that cannot be used is one usage error before any
build, and no zip is written."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import HOST_PYTHON


def test_a_bad_profile_is_one_usage_error_before_any_build(sample):
    (sample / "lambda-kit.imports").write_text("../../etc/shadow.py\n")
    result = subprocess.run(
        ["make", "--no-print-directory", "package", "COMPILE=1", f"PYTHON_VERSION={HOST_PYTHON}"],
        cwd=sample,
        env={**os.environ, "LAMBDA_KIT_VENV": sys.prefix},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("lambda-kit: error: the import profile cannot be used (")
    assert result.stderr.splitlines()[1].startswith("hint: record it again with make profile")
    assert not (sample / "build.zip").exists()
