"""`native-needed` resolves libraries as Lambda's loader does. Small ELF files built with gcc pin
each rule of the search (inherited RPATH, RUNPATH not inherited, LD_LIBRARY_PATH, sonames already
loaded, a wrong machine skipped, a non-ELF file stopping the load), then layers' folders, the links
cache, the search's bounds, and extension modules a package imports only under try/except
ImportError. The same files against the real loader: integration/docker/test_loader_truth.py."""

from __future__ import annotations

import zipfile

from helpers import EXT, elf_zip, loader_cases, needs_gcc, so, with_machine
from lambda_kit.audit import audit, auditnative, elflinks, nativeneeds
from loaderimage import audit_verdicts


@needs_gcc
def test_each_search_rule_of_the_model(tmp_path):
    files, expect = loader_cases(tmp_path)
    path = elf_zip(tmp_path / "cases.zip", files)
    assert audit_verdicts(path) == expect
    report = audit.audit_zip(path, runtime="3.11")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert "deleted/ext" + EXT + " -> liba.so.1 (libb.so.1)" in needed.entries
    assert "runpath/ext" + EXT + " -> liba.so.1 (libb.so.1)" in needed.entries
    # Reached by no extension module and missing what it needs when loaded alone: warnings, named.
    (unreached,) = [f for f in report.findings if f.id == "native-unreached"]
    assert unreached.severity == audit.WARNING
    assert sorted(unreached.entries) == ["loose/liba.so.1 (libb.so.1)", "machine/arm/libb.so.1 (arm64)"]


@needs_gcc
def test_a_file_that_is_not_elf_stops_the_search(tmp_path):
    b = so(tmp_path, "libb.so.1", soname="libb.so.1")
    files = {"junk/libb.so.1": b"not an ELF file at all\n" * 8, "deps/libb.so.1": b}
    files["ext" + EXT] = so(tmp_path, "e", needs=["libb.so.1"], rpath="$ORIGIN/junk:$ORIGIN/deps")
    report = audit.audit_zip(elf_zip(tmp_path / "junk.zip", files), runtime="3.11")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert needed.entries == ["ext" + EXT + " (libb.so.1: invalid ELF header)"]


@needs_gcc
def test_layers_put_extension_modules_on_opt_python_and_libraries_on_opt_lib(tmp_path):
    b = so(tmp_path, "libb.so.1", soname="libb.so.1")
    ext = so(tmp_path, "e", needs=["libb.so.1"])
    function = elf_zip(tmp_path / "fn.zip", {"app.py": b"def handler(e, c):\n    return 1\n"})
    full = elf_zip(tmp_path / "full.zip", {"python/layered/ext" + EXT: ext, "lib/libb.so.1": b})
    assert "native-needed" not in audit.audit_zip(function, runtime="3.11", layers=[full]).ids()
    site = "python/lib/python3.11/site-packages/sp/ext" + EXT
    bare = elf_zip(tmp_path / "bare.zip", {"python/layered/ext" + EXT: ext, site: ext})
    report = audit.audit_zip(function, runtime="3.11", layers=[bare])
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert sorted(needed.entries) == [f"/opt/python/layered/ext{EXT} (libb.so.1)", f"/opt/{site} (libb.so.1)"]
    # The function's own extension module finds the library a layer puts in lib/.
    mine = elf_zip(tmp_path / "mine.zip", {"mine/ext" + EXT: ext})
    assert "native-needed" not in audit.audit_zip(mine, runtime="3.11", layers=[full]).ids()
    assert "native-needed" in audit.audit_zip(mine, runtime="3.11").ids()


@needs_gcc
def test_the_links_cache_is_read_instead_of_the_files_and_older_entries_are_read_again(tmp_path):
    files, _ = loader_cases(tmp_path)
    path = elf_zip(tmp_path / "cases.zip", {n: d for n, d in files.items() if n.startswith("inherited/")})
    cache = tmp_path / "state" / "audit-native.json"
    assert "native-needed" not in audit.audit_zip(path, runtime="3.11", native_cache=cache).ids()
    links_file = cache.with_name(nativeneeds.NEEDED_FACTS)
    entries = auditnative.load_facts(links_file)
    assert len(entries) == 3 and all(len(v[0]) == 4 for v in entries.values())
    (key,) = [k for k in entries if k.startswith("inherited/deps/libb.so.1|")]
    entries[key] = [[["libzzz.so.9"], [], [], ["libb.so.1", "64", "x86_64", ""]]]
    auditnative.save_facts(links_file, entries)  # what the cache says is what the audit believes
    report = audit.audit_zip(path, runtime="3.11", native_cache=cache)
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert needed.entries == ["inherited/ext" + EXT + " -> liba.so.1 -> libb.so.1 (libzzz.so.9)"]
    entries[key] = [[["libzzz.so.9"], [], []]]  # an older kit's shape: no soname, class, machine
    auditnative.save_facts(links_file, entries)
    assert "native-needed" not in audit.audit_zip(path, runtime="3.11", native_cache=cache).ids()
    assert auditnative.load_facts(links_file)[key][0][0] == ["libc.so.6"]  # read again from the file


@needs_gcc
def test_a_search_over_the_bounds_is_one_error_and_every_file_counts_as_loaded(tmp_path, monkeypatch):
    files, _ = loader_cases(tmp_path)
    path = elf_zip(tmp_path / "cases.zip", files)
    monkeypatch.setattr(elflinks, "MAX_PROBES", 40)
    report = audit.audit_zip(path, runtime="3.11")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    over = [e for e in needed.entries if e.endswith("not resolved, over the audit's bounds (40 places searched)")]
    assert len(over) == 1 and needed.entries[-1] == over[0]  # what was found before the bound stays
    assert "native-arch" in report.ids() and "native-unreached" not in report.ids()  # machine/arm/libb.so.1


@needs_gcc
def test_an_extension_module_imported_only_under_try_except_importerror_is_a_warning(tmp_path):
    so(tmp_path, "libb.so.1", soname="libb.so.1")  # linked against, not shipped
    ext = so(tmp_path, "e", needs=["libb.so.1"])
    guarded = {
        "absolute": "try:\n    from pkg import _opt\nexcept ImportError:\n    _opt = None\n",
        "relative": "try:\n    from ._opt import f\nexcept (OSError, ImportError):\n    f = None\n",
        "importlib": "import importlib\ntry:\n    importlib.import_module('pkg._opt')\nexcept Exception:\n    pass\n",
    }
    for label, source in guarded.items():
        files = {
            "pkg/__init__.py": source.encode(),
            "pkg/_opt" + EXT: ext,
            "pkg/tests/test_x.py": b"from pkg import _opt\n",
        }
        report = audit.audit_zip(elf_zip(tmp_path / f"{label}.zip", files), runtime="3.11")
        assert report.ids() == ["native-optional"], label
        assert report.findings[0].entries == ["pkg/_opt" + EXT + " (libb.so.1)"] and report.warnings == 1
    unguarded = {
        "plain": "from pkg import _opt\n",
        "else branch": "try:\n    pass\nexcept ImportError:\n    pass\nelse:\n    from . import _opt\n",
        "other exception": "try:\n    from . import _opt\nexcept KeyError:\n    pass\n",
        "subclass only": "try:\n    from . import _opt\nexcept ModuleNotFoundError:\n    pass\n",
        "nowhere": "",  # imported by whoever uses it
        "unparsable": "try:\n    from . import _opt\nexcept ImportError:\n    pass\ndef (\n",
    }
    for label, source in unguarded.items():
        files = {"pkg/__init__.py": source.encode(), "pkg/_opt" + EXT: ext}
        report = audit.audit_zip(elf_zip(tmp_path / f"{label}.zip", files), runtime="3.11")
        assert "native-needed" in report.ids() and "native-optional" not in report.ids(), label


@needs_gcc
def test_a_library_the_audit_cannot_read_counts_as_found_on_either_architecture(tmp_path):
    """A damaged entry is zip-corrupt's finding; the search stops there, not with a missing library
    (on arm64 too: found by the arm64 sweep, where tensorflow's 870 MB libtensorflow_cc.so.2, over
    the audit's read bound, was passed over as an x86_64 file)."""
    b = so(tmp_path, "libb.so.1", soname="libb.so.1")
    ext = so(tmp_path, "e", needs=["libb.so.1"], rpath="$ORIGIN/deps")
    for arch, machine, suffix in (("x86_64", 62, EXT), ("arm64", 183, ".cpython-311-aarch64-linux-gnu.so")):
        path = elf_zip(tmp_path / f"{arch}.zip", {"pkg/ext" + suffix: with_machine(ext, machine)})
        with zipfile.ZipFile(path, "a") as zf:
            info = zipfile.ZipInfo("pkg/deps/libb.so.1", (1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, 0o100755 << 16
            zf.writestr(info, with_machine(b, machine), compress_type=zipfile.ZIP_STORED)
        data = bytearray(path.read_bytes())
        at = data.index(with_machine(b, machine)[:64]) + len(b) - 1
        data[at] ^= 0xFF  # its last byte: the CRC no longer matches
        path.write_bytes(bytes(data))
        ids = audit.audit_zip(path, runtime="3.11", arch=arch).ids()
        assert "zip-corrupt" in ids and "native-needed" not in ids, (arch, ids)
