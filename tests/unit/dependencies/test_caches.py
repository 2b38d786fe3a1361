"""Verified caches: a cache someone changed is a warning and a rebuild, never a shipped zip (the
helper's shared environments: test_machine_cache.py)."""

from __future__ import annotations

import zipfile

import pytest

from helpers import make
from lambda_kit.audit import audit
from lambda_kit.dependencies import depcache


def test_the_dependency_cache_hands_out_only_what_verifies(tmp_path):
    packed = tmp_path / "deps.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("lib.py", "x = 1\n")
    warned = []
    cache = depcache.DependencyCache(tmp_path / "state", warn=warned.append)
    key = "a" * 64
    assert cache.get(key) is None
    stored = cache.put(key, packed)
    assert cache.get(key) == stored and stored.read_bytes() == packed.read_bytes() and warned == []
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary file left
    data = bytearray(stored.read_bytes())
    data[40:48] = b"\xff" * 8  # 8 flipped bytes
    stored.write_bytes(bytes(data))
    assert cache.get(key) is None
    assert len(warned) == 1 and "was changed since it was written" in warned[0]
    assert not stored.exists()
    for i in range(5):  # the last KEEP keys stay
        cache.put(f"{i}" * 64, packed)
    assert len(list(stored.parent.glob("*.zip"))) == depcache.DependencyCache.KEEP
    machine = depcache.DependencyCache(tmp_path / "machine", keep=depcache.DependencyCache.MACHINE_KEEP)
    for i in range(depcache.DependencyCache.MACHINE_KEEP + 2):  # many projects' builds on one machine
        machine.put(f"{i:064x}", packed)
    assert machine.get(f"{0:064x}") is None and machine.get(f"{2:064x}") is not None
    assert len(list(machine.folder.glob("*.zip"))) == depcache.DependencyCache.MACHINE_KEEP


@pytest.mark.network
def test_a_tampered_dependency_cache_is_rebuilt_not_shipped(sample):
    first = make(sample, "package", "BUILDER=local")
    assert first.returncode == 0, first.stderr + first.stdout
    (cached,) = (sample / ".lambda-kit" / "deps").glob("*.zip")
    with zipfile.ZipFile(cached) as zf:
        victim = next(i for i in zf.infolist() if i.filename.endswith(".py") and i.compress_size > 200)
    data = bytearray(cached.read_bytes())
    start = victim.header_offset + 30 + len(victim.filename.encode()) + 100
    data[start : start + 8] = bytes(b ^ 0xFF for b in data[start : start + 8])  # 8 flipped bytes inside an entry
    cached.write_bytes(bytes(data))
    app = sample / "lambdas" / "app.py"
    app.write_text(app.read_text() + "\n# a code change\n")
    second = make(sample, "package", "BUILDER=local")
    assert second.returncode == 0, second.stderr + second.stdout
    assert "lambda-kit: warning: the dependency cache" in second.stdout
    assert "dependencies unchanged" not in second.stdout  # rebuilt, not extended from the cache
    zip_path = sample / "build.zip"
    with zipfile.ZipFile(zip_path) as zf:
        assert zf.testzip() is None
    assert audit.audit_zip(zip_path, runtime="3.11", handler="app.handler").ids() == []
