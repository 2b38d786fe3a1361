"""One line, never a traceback: a bad fetch setting for a build that downloads is one error line,
and the previous zip stays."""

from __future__ import annotations

from helpers import kit_env, make, one_error


def test_a_bad_fetch_setting_is_one_line_and_the_zip_stays(sample):
    assert make(sample, "package", "BUILDER=local").returncode == 0
    before = (sample / "build.zip").read_bytes()
    result = make(sample, "package", "BUILDER=local", "-B", env=kit_env(LAMBDA_KIT_FETCH="uv"))
    one_error(result, 2, "lambda-kit: error: LAMBDA_KIT_FETCH is neither kit nor pip")
    assert (sample / "build.zip").read_bytes() == before
