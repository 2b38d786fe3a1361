"""Deflating on several cores: the bytes of one core, in bounded memory."""

import os
import random
import threading
import tracemalloc
import zipfile
import zlib

import pytest
from lambda_kit.zips import zipdeflate, zipreader, zipwriter

DATE_TIME = zipwriter.zip_date_time(None)


def texty(rng: random.Random, size: int) -> bytes:
    """Compressible but not trivial: words from a small vocabulary, some random bytes between."""
    words = [bytes(rng.choices(b"abcdefghij_ ", k=rng.randint(2, 9))) for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + (os.urandom(3) if rng.random() < 0.05 else b"\n")
    return bytes(out[:size])


def bigly(rng: random.Random, size: int) -> bytes:
    """`size` bytes made of one texty MB, rotated by another amount each time (quick to make)."""
    block = texty(rng, min(size, 1 << 20))
    parts = [
        block[i * 7919 % len(block or b"x") :] + block[: i * 7919 % len(block or b"x")]
        for i in range(size // (1 << 20) + 1)
    ]
    return b"".join(parts)[:size]


def tree(root, big: int) -> dict[str, int]:
    """Many small files, an empty one, odd names, several modes, and one file of `big` bytes."""
    rng = random.Random(17)
    files = {
        "empty.txt": (b"", 0o644),
        "big/lib.so": (bigly(rng, big), 0o755),
        "odd name with spaces #1.py": (b"x = 1\n", 0o600),
        "caf\u00e9/\u00fcber.py": (b"y = 2\n" * 50, 0o700),
        "tab\tand-dash--/x.txt": (os.urandom(5000), 0o640),
        "bin/tool": (b"#!/bin/sh\necho hi\n", 0o750),
    }
    for i in range(150):
        files[f"pkg{i % 7}/mod{i}.py"] = (texty(rng, rng.randint(0, 60_000)), 0o644)
    for name, (data, mode) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    return {name: len(data) for name, (data, _) in files.items()}


def as_writestr_did(entries, dest):
    """The writer before the threads: each file read whole and given to ZipFile.writestr."""
    with zipfile.ZipFile(dest, "w") as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=DATE_TIME)
            info.create_system, info.extra = 3, b""
            info.external_attr = zipreader.attributes(entry.is_dir, entry.mode)
            if entry.is_dir:
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, b"")
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, entry.source.read_bytes(), compresslevel=6)
    return dest.read_bytes()


def written(entries, dest, monkeypatch, workers):
    monkeypatch.setenv(zipdeflate.WORKERS_ENV, str(workers))
    zipwriter.write_zip(entries, dest, DATE_TIME)
    return dest.read_bytes()


def test_threads_one_thread_and_writestr_give_the_same_bytes(tmp_path, monkeypatch):
    # Small limits so this tree has streamed files, a window that fills, and several threads.
    monkeypatch.setattr(zipdeflate, "STREAM_ABOVE", 200_000)
    monkeypatch.setattr(zipdeflate, "CHUNK", 65_536)
    monkeypatch.setattr(zipdeflate, "WINDOW", 300_000)
    monkeypatch.setattr(zipdeflate, "SERIAL_BELOW", 0)
    sizes = tree(tmp_path / "t", big=1_000_000)
    entries = zipwriter.merge(("t", zipwriter.collect(tmp_path / "t")))
    reference = as_writestr_did(entries, tmp_path / "ref.zip")
    assert written(entries, tmp_path / "one.zip", monkeypatch, 1) == reference
    assert written(entries, tmp_path / "four.zip", monkeypatch, 4) == reference
    with zipfile.ZipFile(tmp_path / "four.zip") as zf:
        assert zf.testzip() is None
        assert {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()} == sizes
        assert zf.getinfo("caf\u00e9/\u00fcber.py").flag_bits & 0x800  # the UTF-8 name flag, as writestr sets it


def test_the_default_limits_give_the_same_bytes_with_a_file_streamed(tmp_path, monkeypatch):
    tree(tmp_path / "t", big=zipdeflate.STREAM_ABOVE + 3 * zipdeflate.CHUNK + 5)
    entries = zipwriter.merge(("t", zipwriter.collect(tmp_path / "t")))
    assert written(entries, tmp_path / "two.zip", monkeypatch, 2) == as_writestr_did(entries, tmp_path / "ref.zip")


@pytest.mark.parametrize("size", [0, 1, 4096, 65_536, 3 * 65_536, 200_001])
def test_a_stream_cut_in_chunks_is_the_stream_of_one_call(tmp_path, monkeypatch, size):
    monkeypatch.setattr(zipdeflate, "CHUNK", 4096)
    for data in (texty(random.Random(size), size), os.urandom(size), bytes(size)):
        path = tmp_path / "f"
        path.write_bytes(data)
        parts = []
        crc, length, compressed = zipdeflate.deflate_stream(path, parts.append)
        whole = zipdeflate.deflate(path)
        assert (
            (crc, length, b"".join(parts))
            == (whole.crc, whole.size, whole.data)
            == (zlib.crc32(data), size, whole.data)
        )
        assert compressed == len(whole.data)


def test_no_more_than_the_window_is_read_ahead(tmp_path, monkeypatch):
    monkeypatch.setattr(zipdeflate, "WINDOW", 100_000)
    monkeypatch.setattr(zipdeflate, "SERIAL_BELOW", 0)
    paths = []
    for i in range(60):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(os.urandom(7_000 + 500 * i))
    read, lock = [0], threading.Lock()
    real = zipdeflate.deflate

    def counting(path):
        with lock:
            read[0] += path.stat().st_size
        return real(path)

    monkeypatch.setattr(zipdeflate, "deflate", counting)
    consumed, most_ahead = 0, 0
    for done in zipdeflate.deflated(paths, 4):
        threading.Event().wait(0.002)  # a slow writer: the threads run ahead as far as allowed
        consumed += done.size
        most_ahead = max(most_ahead, read[0] - consumed)
    assert read[0] == consumed == sum(p.stat().st_size for p in paths)
    assert 50_000 < most_ahead <= 100_000


def test_a_big_file_is_never_held_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(zipdeflate, "STREAM_ABOVE", 1 << 20)
    monkeypatch.setattr(zipdeflate, "SERIAL_BELOW", 0)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "big.bin").write_bytes(os.urandom(12 << 20))  # incompressible: 12 MB out too
    for name in ("a.py", "z.py"):
        (tmp_path / "t" / name).write_bytes(b"x = 1\n" * 1000)
    entries = zipwriter.merge(("t", zipwriter.collect(tmp_path / "t")))
    monkeypatch.setenv(zipdeflate.WORKERS_ENV, "2")
    tracemalloc.start()
    try:
        zipwriter.write_zip(entries, tmp_path / "big.zip", DATE_TIME)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * zipdeflate.CHUNK, peak  # a chunk, its output, zlib's buffers: not the file
    with zipfile.ZipFile(tmp_path / "big.zip") as zf:
        assert zf.read("big.bin") == (tmp_path / "t" / "big.bin").read_bytes()


def test_worker_count_is_the_cores_at_most_eight_or_the_setting(monkeypatch):
    monkeypatch.delenv(zipdeflate.WORKERS_ENV, raising=False)
    cores = len(os.sched_getaffinity(0))
    assert zipdeflate.worker_count() == min(cores, zipdeflate.MAX_WORKERS)
    assert zipdeflate.worker_count(" ") == min(cores, zipdeflate.MAX_WORKERS)
    assert zipdeflate.worker_count("3") == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError):
            zipdeflate.worker_count(bad)


def test_a_bad_setting_is_one_error_line(tmp_path, monkeypatch):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.py").write_text("a = 1\n")
    monkeypatch.setenv(zipdeflate.WORKERS_ENV, "many")
    with pytest.raises(
        zipwriter.ZipBuildError, match=r"LAMBDA_KIT_ZIP_WORKERS is not a whole number .*\(many\)"
    ) as caught:
        zipwriter.write_zip(zipwriter.merge(("t", zipwriter.collect(tmp_path / "t"))), tmp_path / "a.zip", DATE_TIME)
    assert "unset it" in caught.value.hint


def test_a_file_gone_before_its_turn_stops_the_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(zipdeflate, "SERIAL_BELOW", 0)
    tree(tmp_path / "t", big=10)
    entries = zipwriter.merge(("t", zipwriter.collect(tmp_path / "t")))
    (tmp_path / "t" / "pkg3" / "mod80.py").unlink()
    before = threading.active_count()
    monkeypatch.setenv(zipdeflate.WORKERS_ENV, "4")
    with pytest.raises(FileNotFoundError, match="mod80.py"):
        zipwriter.write_zip(entries, tmp_path / "a.zip", DATE_TIME)
    assert threading.active_count() == before
