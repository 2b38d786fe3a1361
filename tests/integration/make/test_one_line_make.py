"""One line, never a traceback, through make: hostile settings and paths each give one
`lambda-kit: error` line and a hint, and settings never reach a shell unquoted."""

from __future__ import annotations

from helpers import make, one_error


def test_a_quote_in_a_setting_runs_nothing(sample, tmp_path):
    marker = tmp_path / "pwned"
    for name in ("HANDLER", "SRC", "ZIP", "PIPFILE", "BUILDER"):
        result = make(sample, "package", f"{name}=x'; touch {marker}; echo '")
        assert not marker.exists(), name
        assert result.returncode != 0 and "Traceback" not in result.stderr, name
    handler = make(sample, "package", f"HANDLER=x'; touch {marker}; echo '")
    one_error(handler, 2, "lambda-kit: error: the handler is not of the form module.function (x'; touch")
    help_text = make(sample, "help", "HANDLER=a'b")
    assert help_text.returncode == 0 and "HANDLER=a'b" in help_text.stdout


def test_a_zip_path_the_kit_cannot_write_is_one_line(sample):
    (sample / "afile").write_text("")
    under_a_file = make(sample, "package", "BUILDER=local", "ZIP=afile/build.zip")
    one_error(under_a_file, 2, "lambda-kit: error: cannot create the zip's folder")
