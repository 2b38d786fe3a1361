"""The kit's wheel installer against pip itself: the same files, byte for byte, as the pinned pip's
`install --target` (after the kit drops bin/), for odd wheels made here (real ones from PyPI:
integration/network/test_wheelinstall_network.py); what pip would not refuse but the kit does
(paths outside the target, a file the lock does not name, two packages writing one file
differently, a deflate stream that is not exactly its file); and deps.zip packed with the wheels'
own deflate streams for the files still as unpacked."""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from helpers import kit_target, make_wheel, pip_target, sha256_pin, tree_files
from lambda_kit.steps import buildsteps, wheelinstall
from lambda_kit.zips import zipwriter


def odd_wheels(folder: Path) -> list[Path]:
    folder.mkdir()
    alpha = make_wheel(
        folder,
        "alpha",
        "1.0",
        {
            "alpha/__init__.py": b"VALUE = 1\n",
            "alpha/run.sh": (b"#!/bin/sh\necho hi\n", 0o755),
            "alpha/na,me with space/é.txt": b"odd name\n",
            "alpha-1.0.data/purelib/alpha_extra.py": b"EXTRA = 2\n",
            "alpha-1.0.data/platlib/alpha_native/__init__.py": b"",
            "alpha-1.0.data/data/share/alpha/notes.txt": b"data file\n",
            "alpha-1.0.data/data/lib/dropped.txt": b"under pip's own lib folder\n",
            "alpha-1.0.data/data/alpha/shadowed.txt": b"a data item a package folder already holds\n",
            "alpha-1.0.data/headers/alpha.h": b"#define ALPHA 1\n",
            "alpha-1.0.data/scripts/alpha-tool": (b"#!python\nprint('tool')\n", 0o755),
            "alpha-1.0.data/scripts/alpha-cli": (b"#!python\n# a setuptools wrapper\n", 0o755),
        },
        unlisted={"alpha/unlisted.py": b"# not in RECORD\n"},
        entry_points="[console_scripts]\nalpha-cli = alpha:main\n",
    )
    beta = make_wheel(folder, "beta", "2.0", {"beta.py": b"B = 1\n", "beta-2.0.data/data/share/beta.txt": b"b\n"})
    return [alpha, beta]


def test_the_kit_installs_what_pip_installs_byte_for_byte(tmp_path):
    wheels = odd_wheels(tmp_path / "wheels")
    pip_target(wheels, tmp_path / "pip", ["alpha==1.0", "beta==2.0"])
    kit_target(wheels, tmp_path / "kit")
    by_pip, by_kit = tree_files(tmp_path / "pip"), tree_files(tmp_path / "kit")
    assert sorted(by_kit) == sorted(by_pip)
    assert [name for name in by_pip if by_pip[name] != by_kit[name]] == []
    # What this proves is not empty: data, headers, exec bits, an unlisted file, pip's own RECORD.
    assert "share/alpha/notes.txt" in by_kit and "include/site/python3.11/alpha/alpha.h" in by_kit
    assert "lib/dropped.txt" not in by_kit and "alpha/shadowed.txt" not in by_kit
    assert by_kit["alpha/run.sh"][1] and not by_kit["alpha/__init__.py"][1]
    record = by_kit["alpha-1.0.dist-info/RECORD"][0].decode()
    assert "alpha/unlisted.py,," in record and "alpha-1.0.dist-info/INSTALLER,sha256=" in record
    assert record.endswith("\r\n") and "../" not in record


def test_a_wheel_the_lock_does_not_name_is_refused_before_anything_is_written(tmp_path):
    wheel = make_wheel(tmp_path, "gamma", "1.0", {"gamma.py": b"G = 1\n"})
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(wheelinstall.WheelError, match=r"hash mismatch: gamma-1.0-py3-none-any.whl does not match"):
        wheelinstall.install([wheelinstall.wheel_for(wheel, ("sha256:" + "0" * 64,))], target, "python3.11")
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape.py", "/etc/escape.py", "pkg/../../escape.py", "pkg\\..\\escape.py"])
def test_a_name_outside_the_target_is_refused(tmp_path, name):
    wheel = make_wheel(tmp_path, "delta", "1.0", {name: b"x = 1\n", "delta.py": b""})
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)
    with pytest.raises(wheelinstall.WheelError, match="has a file outside the install folder"):
        wheelinstall.install([wheelinstall.wheel_for(wheel, (sha256_pin(wheel),))], target, "python3.11")
    assert not (tmp_path / "deep" / "escape.py").exists() and not (tmp_path / "escape.py").exists()


def test_two_packages_writing_one_file_differently_is_an_error_and_alike_is_not(tmp_path):
    one = make_wheel(tmp_path, "one", "1.0", {"shared/__init__.py": b"", "shared/x.py": b"A = 1\n"})
    same = make_wheel(tmp_path, "same", "1.0", {"shared/__init__.py": b"", "same.py": b""})
    other = make_wheel(tmp_path, "other", "1.0", {"shared/x.py": b"A = 2\n"})
    pins = {w: (sha256_pin(w),) for w in (one, same, other)}
    fine = tmp_path / "fine"
    fine.mkdir()
    wheelinstall.install([wheelinstall.wheel_for(w, pins[w]) for w in (one, same)], fine, "python3.11")
    assert (fine / "shared" / "x.py").read_bytes() == b"A = 1\n"
    clash = tmp_path / "clash"
    clash.mkdir()
    with pytest.raises(wheelinstall.WheelError, match=r"two dependencies install shared/x.py with different contents"):
        wheelinstall.install([wheelinstall.wheel_for(w, pins[w]) for w in (one, other)], clash, "python3.11")


def test_another_distributions_data_folder_is_installed_as_pip_installs_it(tmp_path):
    """pip takes every top-level `*.data` folder as a scheme folder, whatever name it carries: its
    purelib/platlib go to the target, data and headers where pip --target puts them, scripts to
    bin/ (which the kit drops). Before, the kit shipped such a folder as it was, a script included."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    foreign = make_wheel(
        folder,
        "gamma",
        "1.0",
        {
            "gamma/__init__.py": b"",
            "other-9.data/purelib/gamma_more.py": b"MORE = 1\n",
            "other-9.data/platlib/gamma_native/__init__.py": b"",
            "other-9.data/scripts/other-tool": (b"#!/bin/sh\necho tool\n", 0o755),
            "other-9.data/data/share/other/notes.txt": b"notes\n",
            "other-9.data/headers/other.h": b"#define OTHER 1\n",
            "gamma-1.0.data/purelib/../purelib/gamma_dotted.py": b"D = 1\n",
        },
    )
    pip_target([foreign], tmp_path / "pip", ["gamma==1.0"])
    kit_target([foreign], tmp_path / "kit")
    by_pip, by_kit = tree_files(tmp_path / "pip"), tree_files(tmp_path / "kit")
    assert sorted(by_kit) == sorted(by_pip)
    assert [name for name in by_pip if by_pip[name] != by_kit[name]] == []
    assert "gamma_more.py" in by_kit and "gamma_dotted.py" in by_kit and "share/other/notes.txt" in by_kit
    assert not any(name.startswith("other-9.data") or "other-tool" in name for name in by_kit)


@pytest.mark.parametrize(
    "first, second, message",
    [
        (
            {"pkg/x": b"a file"},
            {"pkg/x/y.py": b""},
            r"alpha-1.0-py3-none-any.whl and beta-1.0-py3-none-any.whl install pkg/x both as a file and as a folder",
        ),
        (
            {"pkg/x/y.py": b""},
            {"pkg/x": b"a file"},
            r"alpha-1.0-py3-none-any.whl and beta-1.0-py3-none-any.whl install pkg/x both as a file and as a folder",
        ),
        (
            {"pkg/..": b"x"},
            {"beta.py": b""},
            r"alpha-1.0-py3-none-any.whl has an entry that names the install folder itself",
        ),
        (
            {".": b"x"},
            {"beta.py": b""},
            r"alpha-1.0-py3-none-any.whl has an entry that names the install folder itself",
        ),
        (
            {"pkg": b"x", "pkg/a.py": b""},
            {"beta.py": b""},
            r"alpha-1.0-py3-none-any.whl installs pkg both as a file and as a folder",
        ),
    ],
    ids=["file-then-folder", "folder-then-file", "dotdot", "dot", "one-wheel"],
)
def test_a_path_conflict_is_one_error_naming_the_path_and_both_wheels(tmp_path, first, second, message):
    alpha = make_wheel(tmp_path, "alpha", "1.0", first)
    beta = make_wheel(tmp_path, "beta", "1.0", second)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(wheelinstall.WheelError, match=message):
        wheelinstall.install([wheelinstall.wheel_for(w, (sha256_pin(w),)) for w in (alpha, beta)], target, "python3.11")


def test_malformed_wheels_are_one_line_each(tmp_path):
    future = make_wheel(tmp_path, "future", "1.0", {"future.py": b""}, wheel_version="2.0")
    with pytest.raises(wheelinstall.WheelError, match="has Wheel-Version 2.0"):
        wheelinstall.install([wheelinstall.wheel_for(future, (sha256_pin(future),))], tmp_path, "python3.11")
    two = make_wheel(tmp_path, "two", "1.0", {"two.py": b"", "extra-1.0.dist-info/METADATA": b""})
    with pytest.raises(wheelinstall.WheelError, match="has 2 .dist-info folders, not one"):
        wheelinstall.install([wheelinstall.wheel_for(two, (sha256_pin(two),))], tmp_path, "python3.11")


def edit_entry(wheel: Path, member: str, method: int, crc: int, file_size: int) -> None:
    """Rewrite an entry's method, CRC and uncompressed size in both its headers, in place: its
    stored bytes become a raw stream of that method, declared to inflate to `file_size` bytes."""
    data = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as zf:
        local = zf.getinfo(member).header_offset
    struct.pack_into("<H", data, local + 8, method)
    struct.pack_into("<L", data, local + 14, crc)
    struct.pack_into("<L", data, local + 22, file_size)  # after the compressed size
    central = struct.unpack_from("<L", data, data.rindex(b"PK\x05\x06") + 16)[0]  # the directory's start
    while True:
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, central + 28)
        if data[central + 46 : central + 46 + name_length] == member.encode():
            break
        central += 46 + name_length + extra_length + comment_length
    struct.pack_into("<H", data, central + 10, method)
    struct.pack_into("<L", data, central + 16, crc)
    struct.pack_into("<L", data, central + 24, file_size)  # after the compressed size
    wheel.write_bytes(bytes(data))


def raw_deflate(data: bytes, level: int = 6) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def hostile_wheel(folder: Path, stream: bytes, file_size: int, crc: int) -> Path:
    """A wheel whose module bad/mod.py is `stream`, a raw deflate stream declared as `file_size`
    bytes with `crc`: written stored, then its headers edited (real deflate bytes, lying headers)."""
    wheel = make_wheel(folder, "bad", "1.0", {"bad/__init__.py": b"", "bad/mod.py": stream}, stored=("bad/mod.py",))
    edit_entry(wheel, "bad/mod.py", zipfile.ZIP_DEFLATED, crc, file_size)
    return wheel


def install_one(wheel: Path, target: Path) -> dict:
    target.mkdir(parents=True, exist_ok=True)
    return wheelinstall.install([wheelinstall.wheel_for(wheel, (sha256_pin(wheel),))], target, "python3.11")


MODULE = b"".join(b"VALUE_%d = %d\n" % (i, i * i) for i in range(2000))  # 30 KB that deflates well


@pytest.mark.parametrize(
    "stream, file_size, crc, reason",
    [
        (raw_deflate(MODULE), 1000, zlib.crc32(MODULE), "inflates to more than the 1,000 bytes its header declares"),
        (raw_deflate(MODULE), len(MODULE) + 1, zlib.crc32(MODULE), f"inflates to {len(MODULE):,} bytes, not the"),
        (raw_deflate(MODULE)[:-40], len(MODULE), zlib.crc32(MODULE), "ends early: its deflate stream stops after"),
        (raw_deflate(MODULE) + b"trailing", len(MODULE), zlib.crc32(MODULE), "has 8 bytes after the end of its"),
        (raw_deflate(MODULE), len(MODULE), zlib.crc32(MODULE) ^ 1, "has a CRC mismatch"),
        (b"\xff" * 64, len(MODULE), zlib.crc32(MODULE), "is not a valid deflate stream"),
    ],
    ids=["inflates-past-its-size", "lies-high", "cut-short", "trailing-bytes", "wrong-crc", "not-deflate"],
)
def test_a_deflate_stream_that_is_not_exactly_its_file_is_one_line_naming_wheel_and_entry(
    tmp_path, stream, file_size, crc, reason
):
    wheel = hostile_wheel(tmp_path, stream, file_size, crc)
    with pytest.raises(wheelinstall.WheelError) as caught:
        install_one(wheel, tmp_path / "target")
    assert str(caught.value).startswith(f"bad-1.0-py3-none-any.whl has a damaged entry: bad/mod.py {reason}")
    assert "\n" not in str(caught.value) and caught.value.hint == "pin another version"
    assert not (tmp_path / "target" / "bad" / "mod.py").exists()  # no part of it is left behind


def test_a_deflate_bomb_stops_one_byte_past_its_declared_size(tmp_path):
    """200 MB of zeros (a 200 KB stream) declared as 10 bytes: refused after 11 bytes of output,
    in bounded memory and time."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    bomb = b"".join(c.compress(zeros) for _ in range(200)) + c.flush()
    assert len(bomb) < 300_000
    wheel = hostile_wheel(tmp_path, bomb, 10, zlib.crc32(b"\0" * 10))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(wheelinstall.WheelError, match=r"bad/mod.py inflates to more than the 10 bytes"):
            install_one(wheel, tmp_path / "target")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 2.0
    assert peak < 8 << 20, peak


def test_a_damaged_stream_in_the_second_writer_of_a_path_is_refused_too(tmp_path):
    """Two wheels writing one path are compared as the second's stream inflates: checked as strictly."""
    good = make_wheel(tmp_path, "good", "1.0", {"bad/mod.py": MODULE})
    bad = hostile_wheel(tmp_path, raw_deflate(MODULE) + b"x", len(MODULE), zlib.crc32(MODULE))
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(wheelinstall.WheelError, match=r"bad/mod.py has 1 bytes after the end of its deflate stream"):
        wheelinstall.install([wheelinstall.wheel_for(w, (sha256_pin(w),)) for w in (bad, good)], target, "python3.11")


def raw_streams(archive: Path) -> dict[str, bytes]:
    """Each file entry's compressed bytes, read where its local header says they start."""
    data = archive.read_bytes()
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
    streams = {}
    for info in infos:
        name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_length + extra_length
        streams[info.filename] = data[start : start + info.compress_size]
    return streams


def reuse_wheels(folder: Path) -> list[Path]:
    """Deflated at level 1, so a stream copied from the wheel is told apart from the kit's level 6."""
    folder.mkdir()
    alpha = make_wheel(
        folder,
        "alpha",
        "1.0",
        {
            "alpha/__init__.py": MODULE,
            "alpha/run.sh": (b"#!/bin/sh\n" + MODULE, 0o755),
            "alpha/changed.py": MODULE,
            "alpha/stored.bin": MODULE,
            "alpha/empty.py": b"",
            "alpha-1.0.data/data/share/alpha.txt": MODULE[:5000],
            "alpha-1.0.dist-info/INSTALLER": b"abc\n",  # replaced by pip's, at once and at the same size
        },
        stored=("alpha/stored.bin",),
        level=1,
    )
    beta = make_wheel(folder, "beta", "2.0", {"beta.py": MODULE[:20000]}, level=1)
    return [alpha, beta]


def pack(tree: Path, dest: Path, origins: dict | None) -> Path:
    buildsteps.pack_dependencies(tree, dest, False, origins)
    return dest


def test_deps_zip_carries_the_wheels_streams_for_files_still_as_unpacked(tmp_path, capsys):
    wheels = reuse_wheels(tmp_path / "wheels")
    target = tmp_path / "tree"
    target.mkdir()
    origins = wheelinstall.install([wheelinstall.wheel_for(w, (sha256_pin(w),)) for w in wheels], target, "python3.11")
    buildsteps.drop_console_scripts(target)
    # After the install: one file rewritten in place at the same size (as a step that edits the
    # tree could), one new file (as COMPILE=1's .pyc files are).
    with open(target / "alpha" / "changed.py", "r+b") as f:
        f.write(b"X")
    (target / "alpha" / "new.py").write_bytes(MODULE[:3000])
    first = pack(target, tmp_path / "first.zip", origins)
    assert "(9 as their wheel's deflate stream)" in capsys.readouterr().out
    assert pack(target, tmp_path / "second.zip", origins).read_bytes() == first.read_bytes()
    files = {name: data for name, (data, _) in tree_files(target).items()}
    with zipfile.ZipFile(first) as zf:
        assert zf.testzip() is None
        infos = [i for i in zf.infolist() if not i.is_dir()]
        assert {i.filename: zf.read(i) for i in infos} == files
        assert zf.read("alpha-1.0.dist-info/INSTALLER") == b"pip\n"
    # Every entry's headers are the kit's: its time (not the wheel's 2020), Unix, no extra fields.
    assert {(i.date_time, i.create_system, i.extra, i.compress_type) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 3, b"", zipfile.ZIP_DEFLATED)
    }
    assert {i.filename for i in infos if i.external_attr >> 16 & 0o111} == {"alpha/run.sh"}
    in_zip = raw_streams(first)
    from_wheels = {**raw_streams(wheels[0]), **raw_streams(wheels[1])}
    from_wheels["share/alpha.txt"] = from_wheels.pop("alpha-1.0.data/data/share/alpha.txt")
    by_kit = {name: raw_deflate(data) for name, data in files.items()}
    modules = {"alpha/__init__.py", "alpha/run.sh", "share/alpha.txt", "beta.py"}
    metadata = {f"{d}/{n}" for d in ("alpha-1.0.dist-info", "beta-2.0.dist-info") for n in ("METADATA", "WHEEL")}
    assert {name for name in in_zip if in_zip[name] == from_wheels.get(name)} == modules | metadata | {"alpha/empty.py"}
    assert [name for name in modules if from_wheels[name] == by_kit[name]] == []  # level 1: not what the kit writes
    # Changed or new since the install, stored in the wheel, or written by the installer: the kit's.
    assert {name for name in in_zip if in_zip[name] == by_kit[name]} >= {
        "alpha/changed.py",
        "alpha/new.py",
        "alpha/stored.bin",
        "alpha-1.0.dist-info/RECORD",
        "alpha-1.0.dist-info/INSTALLER",
        "beta-2.0.dist-info/REQUESTED",
    }
    # Without origins (what pip installed): the same files, every one deflated by the kit.
    plain = raw_streams(pack(target, tmp_path / "plain.zip", None))
    assert plain == by_kit and plain != in_zip


def test_two_installs_of_the_same_wheels_pack_the_same_bytes_and_extend_as_before(tmp_path):
    """Both builders run these steps: the same wheels give the same deps.zip, whenever unpacked,
    and a code-only rebuild extends it as it extends any deps.zip."""
    wheels = reuse_wheels(tmp_path / "wheels")
    packed = []
    for run in ("one", "two"):
        target = tmp_path / run
        target.mkdir()
        pins = [wheelinstall.wheel_for(w, (sha256_pin(w),)) for w in wheels]
        origins = wheelinstall.install(pins, target, "python3.11")
        buildsteps.drop_console_scripts(target)
        packed.append(pack(target, tmp_path / f"{run}.zip", origins))
    assert packed[0].read_bytes() == packed[1].read_bytes()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_bytes(b"def handler(event, context):\n    return 1\n")
    code = zipwriter.collect(tmp_path / "src")
    date_time = zipwriter.zip_date_time("1700000000")
    extended, by_entry = tmp_path / "extended.zip", tmp_path / "by-entry.zip"
    assert zipwriter.extend_zip(packed[0], "deps", code, "src", extended, date_time)
    zipwriter.write_zip(zipwriter.merge(("deps", zipwriter.collect_zip(packed[0])), ("src", code)), by_entry, date_time)
    assert extended.read_bytes() == by_entry.read_bytes()
    with zipfile.ZipFile(extended) as zf:
        assert zf.testzip() is None and zf.read("beta.py") == MODULE[:20000]


def test_a_wheel_changed_after_the_install_is_not_copied_from(tmp_path):
    wheels = reuse_wheels(tmp_path / "wheels")
    target = tmp_path / "tree"
    target.mkdir()
    origins = wheelinstall.install([wheelinstall.wheel_for(w, (sha256_pin(w),)) for w in wheels], target, "python3.11")
    os.utime(wheels[1], ns=(0, 0))  # beta's wheel: no longer the file its streams were proven in
    in_zip = raw_streams(pack(target, tmp_path / "deps.zip", origins))
    assert in_zip["beta.py"] == raw_deflate(MODULE[:20000])
    assert in_zip["alpha/__init__.py"] == raw_streams(wheels[0])["alpha/__init__.py"]
