"""The zip writer: same files, same bytes; normalised modes, times and order."""

import dataclasses
import os
import stat
import struct
import zipfile

import pytest
from lambda_kit.zips import zipreader, zipwriter


def make_tree(root, files):
    for name, (data, mode) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    return root


def write(tree, dest, epoch=None, **collect):
    entries = zipwriter.merge(("tree", zipwriter.collect(tree, **collect)))
    zipwriter.write_zip(entries, dest, zipwriter.zip_date_time(epoch))
    return dest


FILES = {
    "app.py": (b"def handler(e, c):\n    return 1\n", 0o600),
    "pkg/__init__.py": (b"", 0o640),
    "pkg/tool.sh": (b"#!/bin/sh\n", 0o700),
    "pkg/__pycache__/x.cpython-311.pyc": (b"junk", 0o644),
    "stale.pyc": (b"junk", 0o644),
}


def test_same_files_written_twice_give_identical_bytes(tmp_path):
    a = write(make_tree(tmp_path / "a", FILES), tmp_path / "a.zip")
    # A second tree with the same content but other mtimes and creation order.
    b_tree = make_tree(tmp_path / "b", dict(reversed(list(FILES.items()))))
    os.utime(b_tree / "app.py", (1_700_000_000, 1_700_000_000))
    b = write(b_tree, tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()


def test_entries_are_sorted_normalised_and_carry_no_bytecode(tmp_path):
    dest = write(make_tree(tmp_path / "t", FILES), tmp_path / "t.zip")
    with zipfile.ZipFile(dest) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == ["app.py", "pkg/", "pkg/__init__.py", "pkg/tool.sh"]
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
    assert modes == {"app.py": 0o644, "pkg/": 0o755, "pkg/__init__.py": 0o644, "pkg/tool.sh": 0o755}
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.create_system for i in infos} == {3}
    assert {i.extra for i in infos} == {b""}
    assert {i.compress_type for i in infos if not i.is_dir()} == {zipfile.ZIP_DEFLATED}


def test_source_date_epoch_sets_every_timestamp(tmp_path):
    dest = write(make_tree(tmp_path / "t", FILES), tmp_path / "t.zip", epoch="1700000000")
    with zipfile.ZipFile(dest) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_epoch_before_1980_is_clamped_and_garbage_is_refused():
    assert zipwriter.zip_date_time("0") == (1980, 1, 1, 0, 0, 0)
    with pytest.raises(zipwriter.UsageError, match="SOURCE_DATE_EPOCH"):
        zipwriter.zip_date_time("yesterday")


def test_a_source_file_shadowing_a_dependency_is_an_error(tmp_path):
    deps = make_tree(tmp_path / "deps", {"yaml/__init__.py": (b"", 0o644)})
    src = make_tree(tmp_path / "src", {"yaml/__init__.py": (b"mine", 0o644)})
    with pytest.raises(zipwriter.ZipBuildError, match=r"yaml/__init__.py comes from both deps and src"):
        zipwriter.merge(("deps", zipwriter.collect(deps)), ("src", zipwriter.collect(src)))


def test_skip_leaves_out_names_and_whole_folders(tmp_path):
    tree = make_tree(tmp_path / "t", {"Pipfile": (b"", 0o644), "bin/tool": (b"", 0o755), "a.py": (b"", 0o644)})
    entries = zipwriter.collect(tree, skip=lambda n: n in ("Pipfile", "bin/"))
    assert sorted(entries) == ["a.py"]


DEPS = {
    "yaml/__init__.py": (b"x = 1\n" * 5000, 0o644),
    "yaml/_yaml.so": (os.urandom(70_000), 0o755),
    "\u00f1ame/\u00fcnicode.txt": (b"caf\xc3\xa9\n", 0o644),
    "empty.py": (b"", 0o644),
    "bin/tool": (b"#!/bin/sh\n", 0o700),
}
SRC = {
    "app.py": (b"def handler(e, c):\n    return 1\n", 0o644),
    "zz.py": (b"z", 0o644),
    "yaml/extra_mine.py": (b"y = 2\n", 0o644),  # a folder shared with a dependency: written once
    "\u00e9t\u00e9/\u00e9.txt": (b"\xc3\xa9", 0o644),
}


def pack(tmp_path, files=DEPS):
    packed = tmp_path / "deps.zip"
    zipwriter.write_zip(
        zipwriter.merge(("deps", zipwriter.collect(make_tree(tmp_path / "deps", files)))),
        packed,
        zipwriter.zip_date_time(None),
    )
    return packed


@pytest.mark.parametrize("epoch", [None, "1700000000"])
def test_extending_a_packed_zip_gives_the_bytes_of_writing_it_entry_by_entry(tmp_path, epoch):
    packed = pack(tmp_path)
    src = zipwriter.collect(make_tree(tmp_path / "src", SRC))
    date_time = zipwriter.zip_date_time(epoch)
    by_entry = tmp_path / "by-entry.zip"
    zipwriter.write_zip(zipwriter.merge(("deps", zipwriter.collect_zip(packed)), ("src", src)), by_entry, date_time)
    extended = tmp_path / "extended.zip"
    assert zipwriter.extend_zip(packed, "deps", src, "src", extended, date_time)
    assert extended.read_bytes() == by_entry.read_bytes()
    with zipfile.ZipFile(extended) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
    names = [i.filename for i in infos]
    # The dependencies first, then the code; each part sorted; the shared folder once.
    deps_names = sorted(zipwriter.collect(tmp_path / "deps"))
    assert names == deps_names + ["app.py", "yaml/extra_mine.py", "zz.py", "\u00e9t\u00e9/", "\u00e9t\u00e9/\u00e9.txt"]
    # Dependencies keep the time they were packed with; the code gets SOURCE_DATE_EPOCH.
    times = {i.filename: i.date_time for i in infos}
    assert {times[n] for n in deps_names} == {(1980, 1, 1, 0, 0, 0)}
    assert times["app.py"] == tuple(date_time)


def test_without_epoch_a_zip_from_the_files_and_one_from_packed_dependencies_are_identical(tmp_path):
    """Packing costs nothing in the result: the same bytes as compressing every file in one go."""
    packed = pack(tmp_path)
    src = zipwriter.collect(make_tree(tmp_path / "src", SRC))
    direct = tmp_path / "direct.zip"
    zipwriter.write_zip(
        zipwriter.merge(("deps", zipwriter.collect(tmp_path / "deps")), ("src", src)),
        direct,
        zipwriter.zip_date_time(None),
    )
    extended = tmp_path / "extended.zip"
    assert zipwriter.extend_zip(packed, "deps", src, "src", extended, zipwriter.zip_date_time(None))
    assert extended.read_bytes() == direct.read_bytes()


def test_extending_refuses_a_file_that_shadows_a_dependency(tmp_path):
    packed = pack(tmp_path)
    src = zipwriter.collect(make_tree(tmp_path / "src", {"yaml/__init__.py": (b"mine", 0o644)}))
    with pytest.raises(zipwriter.ZipBuildError, match=r"yaml/__init__.py comes from both deps and src"):
        zipwriter.extend_zip(packed, "deps", src, "src", tmp_path / "out.zip", zipwriter.zip_date_time(None))
    assert not (tmp_path / "out.zip").exists()


def test_a_zip_not_written_by_the_kit_is_not_extended_but_written_entry_by_entry(tmp_path):
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("lib.py", "x = 1\n")  # create_system and modes of zipfile's defaults
        zf.comment = b"made elsewhere"
    src = zipwriter.collect(make_tree(tmp_path / "src", {"app.py": (b"a", 0o644)}))
    assert not zipwriter.extend_zip(foreign, "deps", src, "src", tmp_path / "out.zip", zipwriter.zip_date_time(None))
    assert not (tmp_path / "out.zip").exists()
    assert zipreader.read_directory(foreign) is None  # a comment: read with zipfile instead


def agrees_with_zipfile(path):
    directory = zipreader.read_directory(path)
    with zipfile.ZipFile(path) as zf, zipreader.ZipReader(path) as reader:
        for record, info in zip(directory.records, zf.infolist(), strict=True):
            for field in (
                "filename",
                "orig_filename",
                "create_system",
                "flag_bits",
                "compress_type",
                "date_time",
                "CRC",
                "compress_size",
                "file_size",
                "external_attr",
                "header_offset",
            ):
                assert getattr(record, field) == getattr(info, field), field
            assert record.is_dir() == info.is_dir()
            if not record.is_dir():
                assert reader.read(record, 1 << 30) == zf.read(info)
    return directory


def test_read_directory_agrees_with_zipfile(tmp_path):
    packed = pack(tmp_path)
    assert agrees_with_zipfile(packed).reusable
    # Read right after its base, an extended zip re-reads only the records after the base's.
    src = zipwriter.collect(make_tree(tmp_path / "src", SRC))
    extended = tmp_path / "extended.zip"
    assert zipwriter.extend_zip(packed, "deps", src, "src", extended, zipwriter.zip_date_time("1700000000"))
    zipreader.read_directory(packed)
    assert len(agrees_with_zipfile(extended).records) == len(zipreader.read_directory(packed).records) + 5
    # A zip with zipfile's default attributes is readable but not reusable as it is.
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lib.py", "x = 1\n")
        zf.writestr("data/", "")
    assert not agrees_with_zipfile(other).reusable


def test_packed_runs_are_copied_as_blocks_with_the_same_bytes(tmp_path):
    """The entry-by-entry path (a base that cannot be extended in one go) copies runs of packed
    entries as blocks: the same bytes as copying each entry."""
    packed = pack(tmp_path)
    src = zipwriter.collect(make_tree(tmp_path / "src", SRC))
    entries = zipwriter.merge(("deps", zipwriter.collect_zip(packed)), ("src", src))
    packed_entries = [e for e in entries if e.packed]
    assert len(packed_entries) == 8 and all(zipwriter._verbatim(e) for e in packed_entries)
    blocks = tmp_path / "blocks.zip"
    zipwriter.write_zip(entries, blocks, zipwriter.zip_date_time(None))
    one_by_one = tmp_path / "one-by-one.zip"
    with zipfile.ZipFile(one_by_one, "w") as zf:
        for entry in entries:  # each entry alone: no run is longer than one
            zipwriter._write_entries(zf, [entry], zipwriter.zip_date_time(None))
    assert blocks.read_bytes() == one_by_one.read_bytes()


def stream_at(archive, info):
    """An entry's compressed bytes, where its local header says they start."""
    data = archive.read_bytes()
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    return data[start : start + info.compress_size]


def test_a_wheels_stream_is_copied_under_the_zips_own_headers(tmp_path):
    """A wheel's entry (Packed, not own): its stream, CRC and sizes are taken, never its local
    header (another time, extra fields), even when its name and attributes are the kit's."""
    data = b"x = 1\n" * 2000
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        info = zipfile.ZipInfo("pkg/mod.py", (2020, 5, 5, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = zipreader.attributes(False, 0o644)
        zf.writestr(info, data, compresslevel=1)
    with zipfile.ZipFile(wheel) as zf:
        from_wheel = zf.getinfo("pkg/mod.py")
    tree = make_tree(tmp_path / "tree", {"pkg/mod.py": (data, 0o644)})
    entry = zipwriter.Entry(
        "pkg/mod.py", tree / "pkg" / "mod.py", 0o644, zipwriter.Packed(str(wheel), from_wheel, False)
    )
    assert zipwriter._verbatim(dataclasses.replace(entry, packed=zipwriter.Packed(str(wheel), from_wheel)))
    assert not zipwriter._verbatim(entry)
    dest = tmp_path / "deps.zip"
    zipwriter.write_zip(
        zipwriter.merge(("deps", {"pkg/": zipwriter.Entry("pkg/", None, 0o755), "pkg/mod.py": entry})),
        dest,
        zipwriter.zip_date_time("1700000000"),
    )
    deflated = write(tree, tmp_path / "deflated.zip", epoch="1700000000")
    with zipfile.ZipFile(dest) as zf, zipfile.ZipFile(deflated) as plain:
        assert zf.testzip() is None and zf.read("pkg/mod.py") == data
        ours, theirs = zf.getinfo("pkg/mod.py"), plain.getinfo("pkg/mod.py")
        assert stream_at(dest, ours) == stream_at(wheel, from_wheel) != stream_at(deflated, theirs)
        for field in ("date_time", "create_system", "extra", "external_attr", "flag_bits", "CRC", "file_size"):
            assert getattr(ours, field) == getattr(theirs, field), field
    assert zipreader.read_directory(dest).reusable  # a code-only rebuild extends it as any deps.zip
