"""`make help` lists the lock settings (LOCK, LOCK_GROUPS, LOCK_EXTRAS, LOCK_PACKAGE)."""

from __future__ import annotations

from helpers import ROOT


def test_make_help_lists_the_lock_settings(tmp_path):
    import subprocess

    out = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "help"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[0].startswith("lambda-kit: build an AWS Lambda zip from Pipfile.lock, pylock.toml, uv.lock")
    for setting in ("LOCK", "LOCK_GROUPS", "LOCK_EXTRAS", "LOCK_PACKAGE"):
        assert any(line.split()[:1] == [setting] for line in out.splitlines()), setting
