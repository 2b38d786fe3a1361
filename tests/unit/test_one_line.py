"""One line, never a traceback: the kit's own bugs give one `internal error` line and a hint, a
zip name that is not UTF-8 one report; and the launcher leaves signals alone for the programs it
runs for others. Hostile settings through make: integration/make/test_one_line_make.py."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from helpers import ROOT, kit_env
from lambda_kit import cli


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
