"""The zip writer: same files, same bytes; normalised modes, times and order."""

import os
import stat
import zipfile

import pytest

from lambda_kit import zipwriter


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
    with pytest.raises(zipwriter.ZipBuildError, match="SOURCE_DATE_EPOCH"):
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


def test_packed_entries_give_the_same_bytes_as_compressing_again(tmp_path):
    deps = make_tree(tmp_path / "deps", {
        "yaml/__init__.py": (b"x = 1\n" * 5000, 0o644),
        "yaml/_yaml.so": (os.urandom(70_000), 0o755),
        "ñame/ünicode.txt": (b"caf\xc3\xa9\n", 0o644),
        "empty.py": (b"", 0o644),
    })  # fmt: skip
    src = make_tree(tmp_path / "src", {"app.py": (b"def handler(e, c):\n    return 1\n", 0o644), "zz.py": (b"z", 0o644)})
    date_time = zipwriter.zip_date_time("1700000000")
    full = tmp_path / "full.zip"
    zipwriter.write_zip(
        zipwriter.merge(("deps", zipwriter.collect(deps)), ("src", zipwriter.collect(src))), full, date_time
    )
    # The dependency part written once (at another time), then reused for a code-only change.
    packed = tmp_path / "deps.zip"
    zipwriter.write_zip(zipwriter.merge(("deps", zipwriter.collect(deps))), packed, zipwriter.zip_date_time(None))
    incremental = tmp_path / "incremental.zip"
    entries = zipwriter.merge(("deps", zipwriter.collect_zip(packed)), ("src", zipwriter.collect(src)))
    assert any(e.packed for e in entries)
    zipwriter.write_zip(entries, incremental, date_time)
    assert incremental.read_bytes() == full.read_bytes()
    with zipfile.ZipFile(incremental) as zf:
        assert zf.testzip() is None
    # Packed with the final timestamp, runs of entries are copied as blocks: still the same bytes.
    zipwriter.write_zip(zipwriter.merge(("deps", zipwriter.collect(deps))), packed, date_time)
    entries = zipwriter.merge(("deps", zipwriter.collect_zip(packed)), ("src", zipwriter.collect(src)))
    packed_entries = [e for e in entries if e.packed]
    assert len(packed_entries) == 6 and all(zipwriter._verbatim(e, date_time) for e in packed_entries)
    zipwriter.write_zip(entries, incremental, date_time)
    assert incremental.read_bytes() == full.read_bytes()
