"""Verified caches and shared environments: a cache someone changed is a warning and a rebuild,
never a shipped zip; tool environments made by runs started together all work."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, kit_env, make
from lambda_kit import audit, depcache


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


def start_launcher(home: Path) -> subprocess.Popen:
    env = {**kit_env(), "LAMBDA_KIT_HOME": str(home)}
    env.pop("LAMBDA_KIT_EXTRAS", None)
    env.pop("LAMBDA_KIT_VENV", None)  # the launcher's own environment, in LAMBDA_KIT_HOME/venv
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "lambda-kit"), "python", "-c", "import elftools, sh"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def start_tools_venv(state: Path) -> subprocess.Popen:
    code = (
        "import sys; from pathlib import Path; from lambda_kit import localbuild, runner; from lambda_kit.network import NetworkSettings\n"
        f"venv = localbuild.tools_venv(Path({str(state)!r}), Path({str(ROOT)!r}), NetworkSettings(), runner.Runner())\n"
        "assert (venv / 'bin' / 'pipenv').exists(), venv\n"
    )
    env = {**kit_env(), "PYTHONPATH": str(ROOT / "scripts")}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.network
def test_runs_started_together_with_no_environment_all_succeed(tmp_path):
    home = tmp_path / "home"
    venv = home / "venv"
    state = tmp_path / "state"
    runs = [start_launcher(home) for _ in range(3)] + [start_tools_venv(state) for _ in range(3)]
    results = [(p.wait(timeout=900), p.communicate()[0]) for p in runs]
    assert [code for code, _ in results] == [0] * 6, results
    # One of each set built it; the others waited for the lock and reused it.
    assert sum("setting up the helper's environment" in out for _, out in results[:3]) == 1, results
    assert (venv / "bin" / "python").exists() and (state / "local-tools" / "lambda-kit.stamp").is_file()
    assert os.path.exists(str(venv) + ".lock")
