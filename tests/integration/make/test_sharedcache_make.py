"""CACHE_URL and CACHE_PUSH settings that cannot be used are one line through make, and the
previous zip stays."""

from __future__ import annotations

import os

import pytest
from helpers import make


@pytest.mark.parametrize(
    "setting, first_line",
    [
        (
            "CACHE_URL=gs://bucket/prefix",
            "lambda-kit: error: CACHE_URL is neither s3:// nor a folder (gs://bucket/prefix)",
        ),
        ("CACHE_URL=s3://", "lambda-kit: error: CACHE_URL names no valid S3 bucket (s3://)"),
        ("CACHE_URL=s3://Bad_Bucket/x", "lambda-kit: error: CACHE_URL names no valid S3 bucket (s3://Bad_Bucket/x)"),
        ("CACHE_PUSH=yes", "lambda-kit: error: CACHE_PUSH must be 0 or 1 (yes)"),
    ],
)
def test_bad_cache_settings_are_one_line_and_keep_the_previous_zip(sample, setting, first_line):
    (sample / "build.zip").write_bytes(b"previous zip")
    os.utime(sample / "build.zip", (0, 0))
    result = make(sample, "package", setting)
    assert result.returncode == 2
    assert result.stderr.splitlines()[:1] == [first_line]
    assert result.stderr.splitlines()[1].startswith("hint: ") and "Traceback" not in result.stderr
    assert (sample / "build.zip").read_bytes() == b"previous zip"
