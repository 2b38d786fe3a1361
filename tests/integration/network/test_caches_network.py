"""A dependency cache someone changed is a warning and a rebuild through make, never a shipped zip."""

from __future__ import annotations

import zipfile

from helpers import make
from lambda_kit.audit import audit


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
