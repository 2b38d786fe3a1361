"""One line, never a traceback: hostile settings and paths, and the kit's own bugs, each give one
`lambda-kit: error` (or `internal error`) line and a hint; settings never reach a shell unquoted."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from helpers import ROOT, kit_env, make
from lambda_kit import cli


def one_error(result, status: int, start: str) -> None:
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: ")]
    assert len(errors) == 1 and errors[0].startswith(start), result.stderr


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


@pytest.mark.network
def test_a_bad_fetch_setting_is_one_line_and_the_zip_stays(sample):
    assert make(sample, "package", "BUILDER=local").returncode == 0
    before = (sample / "build.zip").read_bytes()
    result = make(sample, "package", "BUILDER=local", "-B", env=kit_env(LAMBDA_KIT_FETCH="uv"))
    one_error(result, 2, "lambda-kit: error: LAMBDA_KIT_FETCH is neither kit nor pip")
    assert (sample / "build.zip").read_bytes() == before


def test_an_unexpected_exception_is_one_internal_error_line(monkeypatch, capsys, tmp_path):
    def broken(args):
        raise RuntimeError("a kit bug\nsecond line")

    monkeypatch.setattr(cli, "run_command", broken)
    zip_path = tmp_path / "x.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("a.py", "")
    assert cli.main(["check", str(zip_path)]) == cli.INTERNAL_ERROR == 70
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("lambda-kit: internal error: RuntimeError at test_one_line.py:") and err[0].endswith(
        ": a kit bug"
    )
    assert err[1].startswith("hint: rerun with LAMBDA_KIT_DEBUG=1") and len(err) == 2


def test_a_name_that_is_not_utf8_is_one_report(tmp_path):
    path = tmp_path / "names.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("app.py", "def handler(e, c):\n    pass\n")
    data = path.read_bytes().replace(b"app.py", b"a\xffp.py")  # cp437 for a name without the UTF-8 flag
    path.write_bytes(data)
    env = {**kit_env(), "PYTHONPATH": str(ROOT / "scripts")}
    result = subprocess.run(
        [sys.executable, "-m", "lambda_kit", "check", str(path), "--handler", "app.handler"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "handler-module" in result.stdout


def test_programs_the_launcher_runs_for_others_get_their_signals():
    """The launcher holds SIGINT/SIGTERM only for the kit's own entry points, which release them:
    `make test` (pytest through the launcher) must still stop on Ctrl-C."""
    probe = "import signal; print(sorted(s.name for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lambda-kit"), "python", "-c", probe],
        env=kit_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
