"""Signed CACHE_URL entries through make: a key on make's command line, where every process list
would show it, and a reader asked to push are refused before any build, the key never printed."""

from __future__ import annotations

from pathlib import Path

from helpers import make, new_key


def test_make_refuses_a_key_on_its_command_line_and_a_reader_that_would_push(sample, tmp_path):
    private, _, public = new_key(tmp_path)
    pem = Path(private).read_text()
    body = "".join(pem.splitlines()[1:-1])
    (sample / "build.zip").write_bytes(b"previous zip")
    store = tmp_path / "store"
    store.mkdir()
    on_command_line = make(sample, "package", f"CACHE_URL={store}", f"CACHE_SIGNING_KEY={pem}")
    assert on_command_line.returncode == 2
    assert on_command_line.stderr.splitlines()[0] == (
        "lambda-kit: error: CACHE_SIGNING_KEY holds a key on make's command line, where every process list shows it "
        "(the key itself is not printed)"
    )
    assert body not in on_command_line.stdout + on_command_line.stderr
    reader_pushing = make(sample, "package", f"CACHE_URL={store}", f"CACHE_TRUSTED_KEYS={public}", "CACHE_PUSH=1")
    assert reader_pushing.returncode == 2
    assert reader_pushing.stderr.startswith("lambda-kit: error: CACHE_PUSH=1 needs CACHE_SIGNING_KEY: ")
    assert (sample / "build.zip").read_bytes() == b"previous zip" and list(store.iterdir()) == []
