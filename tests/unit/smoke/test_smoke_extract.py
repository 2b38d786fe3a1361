"""The smoke runner's extraction, on the host (it is plain Python): bounded, inside the task root,
setuid/setgid bits dropped, each entry checked against its header."""

from __future__ import annotations

import stat

import pytest
from helpers import raw_zip, text_entry, zeros_deflated
from lambda_kit.invoke import smoke_runner


def test_modes_are_kept_less_setuid_setgid_and_sticky(tmp_path):
    path = raw_zip(
        tmp_path / "modes.zip", [text_entry("tool", b"#!/bin/sh\n", mode=0o6755), text_entry("data", b"x", mode=0o1644)]
    )
    root = tmp_path / "task"
    root.mkdir()
    assert smoke_runner.extract(str(path), str(root)) == 2
    assert stat.S_IMODE((root / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "data").stat().st_mode) == 0o644


def test_a_bomb_stops_at_lambdas_limit_and_a_lie_is_named(tmp_path):
    root = tmp_path / "task"
    root.mkdir()
    bomb = raw_zip(tmp_path / "bomb.zip", [{"name": "big", "data": zeros_deflated(64 << 20), "size": 64 << 20}])
    with pytest.raises(smoke_runner.InvalidZip, match="Unzipped size must be smaller than 262144000 bytes"):
        smoke_runner.extract(str(bomb), str(root), max_bytes=32 << 20)
    assert (root / "big").stat().st_size <= 32 << 20
    lie = raw_zip(tmp_path / "lie.zip", [{"name": "x\x1b.py", "data": zeros_deflated(8 << 20), "size": 10}])
    with pytest.raises(smoke_runner.InvalidZip, match=r"x\\x1b.py: inflates to more than the 10 bytes"):
        smoke_runner.extract(str(lie), str(root))


def test_names_outside_the_root_and_garbage_are_invalid(tmp_path):
    root = tmp_path / "task"
    root.mkdir()
    climbing = raw_zip(tmp_path / "climb.zip", [text_entry("a/../../escape.py", b"x")])
    with pytest.raises(smoke_runner.InvalidZip, match="outside the task root"):
        smoke_runner.extract(str(climbing), str(root))
    assert not (tmp_path / "escape.py").exists()
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x05\x06" + b"\xff" * 40)
    with pytest.raises(smoke_runner.InvalidZip):
        smoke_runner.extract(str(garbage), str(root))


def test_a_report_that_is_not_one_line_of_the_right_shape_is_malformed():
    ok = b'{"ok": true, "result": "1", "duration_ms": 1}\n'
    assert smoke_runner.child_report(ok)["ok"] is True
    for raw in (ok + ok, b"{not json\n", b'{"ok": "yes"}\n', b'{"ok": false, "error": "x"}\n', b"[1]\n"):
        assert smoke_runner.child_report(raw)["error"]["errorType"] == "Runtime.MalformedReport", raw
    assert smoke_runner.child_report(b"")["error"]["errorType"] == "Runtime.ExitError"
