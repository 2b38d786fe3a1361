"""The dependency cache hands out only what verifies: a changed entry is a warning and a miss, and
only the last keys are kept (the helper's shared environments:
integration/network/test_machine_cache.py)."""

from __future__ import annotations

import zipfile

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
