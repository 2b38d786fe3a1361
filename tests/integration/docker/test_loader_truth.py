"""Issue 23, parts 1 and 2: `native-needed` resolves libraries as Lambda's loader does, and its
verdicts equal the real ld.so's, file by file (tests/loaderimage.py: an image whose system
libraries are exactly what runtimelibs lists; x86_64 only, no arm64 emulation here).

Small ELF files built with gcc pin each rule of the search (inherited RPATH, RUNPATH not
inherited, LD_LIBRARY_PATH, sonames already loaded, a wrong machine skipped, a non-ELF file
stopping the load); real wheels from PyPI show the popular packages the old rule refused."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from loaderimage import audit_verdicts, image_libraries, loader_image, loader_verdicts

from lambda_kit.audit import audit, auditnative, elflinks, nativeneeds, runtimelibs
from lambda_kit.common import runtimes
from helpers import PROJECTS

RUNTIME = runtimes.lookup("3.11")
EXT = ".cpython-311-x86_64-linux-gnu.so"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the small ELF files")


def so(folder: Path, name: str, *, soname: str = "", needs=(), rpath: str = "", runpath: str = "") -> bytes:
    """A shared object built by gcc: DT_SONAME, DT_NEEDED of `needs` (built files), DT_RPATH or
    DT_RUNPATH as given."""
    src = folder / f"{name}.c"
    symbol = re.sub(r"\W", "_", name)
    src.write_text(f"int f_{symbol}(void) {{ return 1; }}\n")
    out = folder / name
    args = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), "-Wl,--no-as-needed"]
    args += [f"-Wl,-soname,{soname}"] if soname else []
    args += [str(folder / n) for n in needs]
    if rpath:
        args += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
    if runpath:
        args += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
    subprocess.run(args, check=True, capture_output=True)
    return out.read_bytes()


def with_machine(data: bytes, machine: int) -> bytes:
    return data[:18] + machine.to_bytes(2, "little") + data[20:]


def cases(folder: Path) -> tuple[dict[str, bytes], dict[str, list[str]]]:
    """One zip's members, one package per rule, and what the loader must say of each extension."""
    b = so(folder, "libb.so.1", soname="libb.so.1")
    a = so(folder, "liba.so.1", soname="liba.so.1", needs=["libb.so.1"])
    files, expect = {}, {}
    # DT_RPATH is inherited: liba has no path of its own and finds libb through the extension's.
    files |= {"inherited/deps/liba.so.1": a, "inherited/deps/libb.so.1": b}
    files["inherited/ext" + EXT] = so(folder, "e1", needs=["liba.so.1"], rpath="$ORIGIN/deps")
    expect["inherited/ext" + EXT] = []
    # DT_RUNPATH is not: the same tree with a RUNPATH misses libb.
    files |= {"runpath/deps/liba.so.1": a, "runpath/deps/libb.so.1": b}
    files["runpath/ext" + EXT] = so(folder, "e2", needs=["liba.so.1"], runpath="$ORIGIN/deps")
    expect["runpath/ext" + EXT] = ["libb.so.1"]
    # An object with a RUNPATH of its own stops the inherited RPATH for its needs.
    r = so(folder, "libr.so.1", soname="libr.so.1", needs=["libb.so.1"], runpath="$ORIGIN/nowhere")
    files |= {"stopped/deps/libr.so.1": r, "stopped/deps/libb.so.1": b}
    files["stopped/ext" + EXT] = so(folder, "e3", needs=["libr.so.1"], rpath="$ORIGIN/deps")
    expect["stopped/ext" + EXT] = ["libb.so.1"]
    # Lambda's LD_LIBRARY_PATH has /var/task/lib.
    files["lib/libl.so.1"] = so(folder, "libl.so.1", soname="libl.so.1")
    files["tasklib/ext" + EXT] = so(folder, "e4", needs=["libl.so.1"])
    expect["tasklib/ext" + EXT] = []
    # A relative RPATH counts from the working folder, /var/task (psycopg2-binary's libpq has one).
    files["relative/deps/libb.so.1"] = b
    files["relative/ext" + EXT] = so(folder, "e5", needs=["libb.so.1"], rpath="relative/deps")
    expect["relative/ext" + EXT] = []
    # A library already loaded answers to its DT_SONAME: libx needs libsoname.so.7, which no file
    # is named; the file loaded as libfile.so.1 carries that soname.
    so(folder, "libfile.so.1", soname="libfile.so.1")
    so(folder, "libsoname.so.7", soname="libsoname.so.7")
    x = so(folder, "libx.so.1", soname="libx.so.1", needs=["libsoname.so.7"])
    files |= {"soname/deps/libfile.so.1": (folder / "libsoname.so.7").read_bytes(), "soname/deps/libx.so.1": x}
    files["soname/ext" + EXT] = so(folder, "e6", needs=["libfile.so.1", "libx.so.1"], rpath="$ORIGIN/deps")
    expect["soname/ext" + EXT] = []
    # A file for another machine is passed over and the search goes on.
    files |= {"machine/arm/libb.so.1": with_machine(b, 183), "machine/deps/libb.so.1": b}
    files["machine/ext" + EXT] = so(folder, "e7", needs=["libb.so.1"], rpath="$ORIGIN/arm:$ORIGIN/deps")
    expect["machine/ext" + EXT] = []
    # The bundled library is missing altogether (a .libs folder with a file deleted).
    files["deleted/deps/liba.so.1"] = a
    files["deleted/ext" + EXT] = so(folder, "e8", needs=["liba.so.1"], rpath="$ORIGIN/deps")
    expect["deleted/ext" + EXT] = ["libb.so.1"]
    # No extension module loads this one (ctypes might): alone, it misses libb.
    files["loose/liba.so.1"] = a
    return files, expect


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, 0o100755 << 16
            zf.writestr(info, data)
    return path


def model_verdicts(zip_path: Path, members) -> dict[str, list[str]]:
    """What elflinks says of each member loaded by full path, the zip as /var/task."""
    with zipfile.ZipFile(zip_path) as zf:
        data = {f"/var/task/{n}": zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    links = {}

    def read(path: str):
        if path not in links:
            links[path] = elflinks.read_links(io.BytesIO(data[path]))
        return links[path]

    loader = elflinks.Loader(read, runtimelibs.provided(RUNTIME), "x86_64", runtimelibs.preloaded(RUNTIME))
    out = {}
    for m in members:
        root = read(f"/var/task/{m}")
        if root is None or root.machine != "x86_64" or root.elfclass != 64:
            out[m] = [UNLOADABLE]  # ld.so refuses the file itself (auditnative's findings)
        else:
            out[m] = sorted({x.name for x in loader.load(f"/var/task/{m}").missing})
    return out


UNLOADABLE = "<the file itself cannot be loaded>"


def truth_of(verdicts: dict[str, list[str]]) -> dict[str, list[str]]:
    """ld.so's verdicts with its messages about the file itself as one marker."""
    return {
        m: [UNLOADABLE] if v and v[0].startswith("<ld.so: /var/task/" + m + ":") else v for m, v in verdicts.items()
    }


@needs_gcc
def test_each_search_rule_of_the_model(tmp_path):
    files, expect = cases(tmp_path)
    path = write_zip(tmp_path / "cases.zip", files)
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
    report = audit.audit_zip(write_zip(tmp_path / "junk.zip", files), runtime="3.11")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert needed.entries == ["ext" + EXT + " (libb.so.1: invalid ELF header)"]


# ---- the real loader ----


@pytest.fixture(scope="module")
def image() -> str:
    return loader_image("3.11")


@pytest.mark.docker
def test_runtimelibs_table_is_what_the_image_holds_and_needs_nothing_else(image):
    """The ground truth is only as good as its system: every soname runtimelibs lists for python3.11
    is in the image (but libpython, which Debian's static python3.11 does not ship, and the other
    architecture's ld.so), and each of them loads with nothing but the others."""
    listed = runtimelibs.provided(RUNTIME) - {"libpython3.11.so.1.0", "ld-linux-aarch64.so.1", "ld-linux-x86-64.so.2"}
    kept = image_libraries(image)
    assert sorted(listed) == kept
    script = 'for f do LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2 "/lib64/$f" || echo "failed $f"; done'
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "/bin/sh", "-c", script, "sh", *kept],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "not found" not in out and "failed" not in out, out
    assert out.count("libc.so.6 =>") >= len(kept) - 2  # each traced (libc and ld.so list themselves differently)


@pytest.mark.docker
@needs_gcc
def test_search_rules_equal_the_real_loader(image, tmp_path):
    files, expect = cases(tmp_path)
    path = write_zip(tmp_path / "cases.zip", files)
    truth = loader_verdicts(image, path)
    assert truth == expect
    assert audit_verdicts(path) == truth
    natives = sorted(n for n in files if ".so" in n)  # each file loaded alone, as ctypes would
    assert model_verdicts(path, natives) == truth_of(loader_verdicts(image, path, members=natives))


@pytest.mark.docker
@needs_gcc
def test_not_elf_in_the_path_fails_the_real_loader_too(image, tmp_path):
    b = so(tmp_path, "libb.so.1", soname="libb.so.1")
    files = {"junk/libb.so.1": b"not an ELF file at all\n" * 8, "deps/libb.so.1": b}
    files["ext" + EXT] = so(tmp_path, "e", needs=["libb.so.1"], rpath="$ORIGIN/junk:$ORIGIN/deps")
    (verdict,) = loader_verdicts(image, write_zip(tmp_path / "junk.zip", files)).values()
    assert len(verdict) == 1 and "invalid ELF header" in verdict[0]


# ---- real wheels ----

ZIPS = {
    "psycopg2": ["psycopg2-binary==2.9.5"],
    "psycopg3": ["psycopg==3.2.10", "psycopg-binary==3.2.10"],
    "scipy": ["scipy==1.15.3", "scikit-learn==1.6.1", "numpy==1.26.4"],
    "pillow": ["Pillow==10.1.0", "numpy==1.26.4"],
    "gevent": ["gevent==24.11.1", "greenlet==3.1.1"],
}


def download(requirements, dest: Path, arch: str = "x86_64") -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    args = runtimes.pip_target_args(RUNTIME, arch)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *args, "--dest", str(dest), *requirements],
        check=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""},
    )
    return sorted(dest.glob("*.whl"))


def zip_of_wheels(wheels, path: Path, drop=()) -> Path:
    """The wheels' files flat at the zip root, as pip install --target lays them out."""
    files = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            files |= {n: zf.read(n) for n in zf.namelist() if not n.endswith("/") and ".data/" not in n}
    return write_zip(path, {n: d for n, d in files.items() if not any(re.search(p, n) for p in drop)})


@pytest.fixture(scope="module")
def real_zips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("loader-wheels")
    return {key: zip_of_wheels(download(reqs, folder / key), folder / f"{key}.zip") for key, reqs in ZIPS.items()}


@pytest.mark.network
def test_popular_wheels_have_no_missing_library(real_zips):
    for key, path in real_zips.items():
        report = audit.audit_zip(path, runtime="3.11", arch="x86_64")
        assert [f for f in report.findings if f.id.startswith("native-")] == [], key


@pytest.mark.network
@pytest.mark.docker
def test_popular_wheels_equal_the_real_loader_file_by_file(image, real_zips):
    for key, path in real_zips.items():
        truth = loader_verdicts(image, path)
        assert truth and audit_verdicts(path, members=truth) == truth, key
        with zipfile.ZipFile(path) as zf:
            natives = [n for n in zf.namelist() if re.search(r"\.so(\.|$)", n) and n not in truth]
        assert model_verdicts(path, natives) == truth_of(loader_verdicts(image, path, members=natives)), key


@pytest.mark.network
@pytest.mark.docker
def test_psycopg2_without_its_bundled_krb5_fails_both_naming_the_chain(image, real_zips, tmp_path):
    with zipfile.ZipFile(real_zips["psycopg2"]) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    (krb5,) = [n for n in files if re.match(r"psycopg2_binary\.libs/libkrb5-", n)]
    path = write_zip(tmp_path / "no-krb5.zip", {n: d for n, d in files.items() if n != krb5})
    soname = krb5.split("/")[1]
    ext = "psycopg2/_psycopg" + EXT
    assert loader_verdicts(image, path) == {ext: [soname]}
    report = audit.audit_zip(path, runtime="3.11")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert needed.severity == audit.ERROR
    assert len(needed.entries) == 1
    assert re.fullmatch(rf"{re.escape(ext)} -> libpq-\w+\.so\.5\.\d+ -> libgssapi_krb5-\w+\.so\.2\.2 \({soname}\)",
                        needed.entries[0])  # fmt: skip


@pytest.mark.docker
def test_an_extension_linked_to_the_systems_libpq_fails_both(image, tmp_path):
    """A psycopg2 built from source links the system's libpq.so.5, which no runtime provides."""
    sample = PROJECTS / "native-needs" / "lambdas"
    files = {"pgext" + EXT: (sample / f"pgext{EXT}").read_bytes(), "app.py": b""}
    path = write_zip(tmp_path / "pgext.zip", files)
    assert loader_verdicts(image, path) == {"pgext" + EXT: ["libpq.so.5"]} == audit_verdicts(path)


# ---- arm64: the model alone (no arm64 loader runs here) ----

ARM64_WHEELS = ["Pillow==10.1.0", "pillow==11.0.0", "shapely==2.0.6", "h5py==3.12.1", "matplotlib==3.9.2",
                "pymssql==2.3.2", "psycopg-binary==3.2.10", "numpy==1.26.4", "scipy==1.15.3"]  # fmt: skip


@pytest.mark.network
def test_popular_arm64_wheels_resolve_and_a_deleted_library_names_its_chain(tmp_path):
    """The old file-by-file rule refused each of these (e.g. shapely.libs/libgeos_c needs libgeos
    beside it, found through the extension's RPATH)."""
    for requirement in ARM64_WHEELS:
        (wheel,) = download([requirement], tmp_path / requirement, arch="arm64")
        report = audit.audit_zip(zip_of_wheels([wheel], tmp_path / f"{requirement}.zip"), runtime="3.11", arch="arm64")
        assert [f for f in report.findings if f.id.startswith("native-")] == [], requirement
    (shapely,) = (tmp_path / "shapely==2.0.6").glob("*.whl")
    path = zip_of_wheels([shapely], tmp_path / "no-geos.zip", drop=[r"^shapely\.libs/libgeos-"])
    report = audit.audit_zip(path, runtime="3.11", arch="arm64")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert needed.entries and all(
        re.fullmatch(
            r"shapely/\S+\.cpython-311-aarch64-linux-gnu\.so -> libgeos_c-\w+\.so\.[\d.]+ \(libgeos-\w+\.so\.[\d.]+\)",
            e,
        )
        for e in needed.entries
    ), needed.entries


# ---- layers, the links cache, bounds ----


@needs_gcc
def test_layers_put_extension_modules_on_opt_python_and_libraries_on_opt_lib(tmp_path):
    b = so(tmp_path, "libb.so.1", soname="libb.so.1")
    ext = so(tmp_path, "e", needs=["libb.so.1"])
    function = write_zip(tmp_path / "fn.zip", {"app.py": b"def handler(e, c):\n    return 1\n"})
    full = write_zip(tmp_path / "full.zip", {"python/layered/ext" + EXT: ext, "lib/libb.so.1": b})
    assert "native-needed" not in audit.audit_zip(function, runtime="3.11", layers=[full]).ids()
    site = "python/lib/python3.11/site-packages/sp/ext" + EXT
    bare = write_zip(tmp_path / "bare.zip", {"python/layered/ext" + EXT: ext, site: ext})
    report = audit.audit_zip(function, runtime="3.11", layers=[bare])
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert sorted(needed.entries) == [f"/opt/python/layered/ext{EXT} (libb.so.1)", f"/opt/{site} (libb.so.1)"]
    # The function's own extension module finds the library a layer puts in lib/.
    mine = write_zip(tmp_path / "mine.zip", {"mine/ext" + EXT: ext})
    assert "native-needed" not in audit.audit_zip(mine, runtime="3.11", layers=[full]).ids()
    assert "native-needed" in audit.audit_zip(mine, runtime="3.11").ids()


@needs_gcc
def test_the_links_cache_is_read_instead_of_the_files_and_older_entries_are_read_again(tmp_path):
    files, _ = cases(tmp_path)
    path = write_zip(tmp_path / "cases.zip", {n: d for n, d in files.items() if n.startswith("inherited/")})
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
    files, _ = cases(tmp_path)
    path = write_zip(tmp_path / "cases.zip", files)
    monkeypatch.setattr(elflinks, "MAX_PROBES", 40)
    report = audit.audit_zip(path, runtime="3.11")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    over = [e for e in needed.entries if e.endswith("not resolved, over the audit's bounds (40 places searched)")]
    assert len(over) == 1 and needed.entries[-1] == over[0]  # what was found before the bound stays
    assert "native-arch" in report.ids() and "native-unreached" not in report.ids()  # machine/arm/libb.so.1


# ---- extension modules their package can do without ----


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
        report = audit.audit_zip(write_zip(tmp_path / f"{label}.zip", files), runtime="3.11")
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
        report = audit.audit_zip(write_zip(tmp_path / f"{label}.zip", files), runtime="3.11")
        assert "native-needed" in report.ids() and "native-optional" not in report.ids(), label


@pytest.mark.network
@pytest.mark.docker
def test_numba_runs_without_its_openmp_and_tbb_layers(image, tmp_path):
    """numba imports omppool and tbbpool inside try/except ImportError: the loader fails on them
    (no libgomp, no libtbb on Lambda), numba does not."""
    path = zip_of_wheels(download(["numba==0.60.0", "llvmlite==0.43.0"], tmp_path / "w"), tmp_path / "numba.zip")
    truth = loader_verdicts(image, path)
    failing = {m for m, v in truth.items() if v}
    assert failing == {f"numba/np/ufunc/{n}{EXT}" for n in ("omppool", "tbbpool")}, truth
    assert audit_verdicts(path, members=truth) == truth
    report = audit.audit_zip(path, runtime="3.11")
    # numpy is left out of this zip (not needed by the loader's verdicts): the closure rule says so.
    assert "native-needed" not in report.ids() and report.ids().count("deps-missing") == report.errors == 1
    assert all("requires numpy" in e for e in report.findings[report.ids().index("deps-missing")].entries)
    (optional,) = [f for f in report.findings if f.id == "native-optional"]
    assert optional.severity == audit.WARNING and len(optional.entries) == 2


@needs_gcc
def test_a_library_the_audit_cannot_read_counts_as_found_on_either_architecture(tmp_path):
    """A damaged entry is zip-corrupt's finding; the search stops there, not with a missing library
    (on arm64 too: found by the arm64 sweep, where tensorflow's 870 MB libtensorflow_cc.so.2, over
    the audit's read bound, was passed over as an x86_64 file)."""
    b = so(tmp_path, "libb.so.1", soname="libb.so.1")
    ext = so(tmp_path, "e", needs=["libb.so.1"], rpath="$ORIGIN/deps")
    for arch, machine, suffix in (("x86_64", 62, EXT), ("arm64", 183, ".cpython-311-aarch64-linux-gnu.so")):
        path = write_zip(tmp_path / f"{arch}.zip", {"pkg/ext" + suffix: with_machine(ext, machine)})
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
