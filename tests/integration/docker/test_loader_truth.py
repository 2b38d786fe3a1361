"""`native-needed`'s verdicts equal the real ld.so's, file by file (tests/loaderimage.py: an image
whose system libraries are exactly what runtimelibs lists; x86_64 only, no arm64 emulation here):
on small ELF files built with gcc, one package per rule of the search, and on real wheels from
PyPI (those tests also need the index). The model alone: unit/audit/test_loader_model.py."""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import EXT, PROJECTS, elf_zip, loader_cases, needs_gcc, pip_download, so, zip_of_wheels
from lambda_kit.audit import audit, elflinks, runtimelibs
from lambda_kit.common import runtimes
from loaderimage import audit_verdicts, image_libraries, loader_image, loader_verdicts

RUNTIME = runtimes.lookup("3.11")


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


# ---- the real loader ----


@pytest.fixture(scope="module")
def image() -> str:
    return loader_image("3.11")


def test_runtimelibs_table_is_what_the_image_holds_and_needs_nothing_else(image):
    """The ground truth is only as good as its system: every soname runtimelibs lists for python3.11
    is in the image (but libpython, which Debian's static python3.11 does not ship, and the other
    architecture's ld.so), and each of them loads with nothing but the others."""
    listed = runtimelibs.provided(RUNTIME) - {"libpython3.11.so.1.0", "ld-linux-aarch64.so.1", "ld-linux-x86-64.so.2"}
    kept = image_libraries(image)
    assert sorted(listed) == kept
    script = 'for f do LD_TRACE_LOADED_OBJECTS=1 /lib64/ld-linux-x86-64.so.2 "/lib64/$f" || echo "failed $f"; done'
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "/bin/sh", "-c", script, "sh", *kept],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "not found" not in out and "failed" not in out, out
    assert out.count("libc.so.6 =>") >= len(kept) - 2  # each traced (libc and ld.so list themselves differently)


@needs_gcc
def test_search_rules_equal_the_real_loader(image, tmp_path):
    files, expect = loader_cases(tmp_path)
    path = elf_zip(tmp_path / "cases.zip", files)
    truth = loader_verdicts(image, path)
    assert truth == expect
    assert audit_verdicts(path) == truth
    natives = sorted(n for n in files if ".so" in n)  # each file loaded alone, as ctypes would
    assert model_verdicts(path, natives) == truth_of(loader_verdicts(image, path, members=natives))


@needs_gcc
def test_not_elf_in_the_path_fails_the_real_loader_too(image, tmp_path):
    b = so(tmp_path, "libb.so.1", soname="libb.so.1")
    files = {"junk/libb.so.1": b"not an ELF file at all\n" * 8, "deps/libb.so.1": b}
    files["ext" + EXT] = so(tmp_path, "e", needs=["libb.so.1"], rpath="$ORIGIN/junk:$ORIGIN/deps")
    (verdict,) = loader_verdicts(image, elf_zip(tmp_path / "junk.zip", files)).values()
    assert len(verdict) == 1 and "invalid ELF header" in verdict[0]


# ---- real wheels ----


@pytest.mark.network
def test_popular_wheels_equal_the_real_loader_file_by_file(image, real_zips):
    for key, path in real_zips.items():
        truth = loader_verdicts(image, path)
        assert truth and audit_verdicts(path, members=truth) == truth, key
        with zipfile.ZipFile(path) as zf:
            natives = [n for n in zf.namelist() if re.search(r"\.so(\.|$)", n) and n not in truth]
        assert model_verdicts(path, natives) == truth_of(loader_verdicts(image, path, members=natives)), key


@pytest.mark.network
def test_psycopg2_without_its_bundled_krb5_fails_both_naming_the_chain(image, real_zips, tmp_path):
    with zipfile.ZipFile(real_zips["psycopg2"]) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    (krb5,) = [n for n in files if re.match(r"psycopg2_binary\.libs/libkrb5-", n)]
    path = elf_zip(tmp_path / "no-krb5.zip", {n: d for n, d in files.items() if n != krb5})
    soname = krb5.split("/")[1]
    ext = "psycopg2/_psycopg" + EXT
    assert loader_verdicts(image, path) == {ext: [soname]}
    report = audit.audit_zip(path, runtime="3.11")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert needed.severity == audit.ERROR
    assert len(needed.entries) == 1
    assert re.fullmatch(
        rf"{re.escape(ext)} -> libpq-\w+\.so\.5\.\d+ -> libgssapi_krb5-\w+\.so\.2\.2 \({soname}\)", needed.entries[0]
    )


def test_an_extension_linked_to_the_systems_libpq_fails_both(image, tmp_path):
    """A psycopg2 built from source links the system's libpq.so.5, which no runtime provides."""
    sample = PROJECTS / "native-needs" / "lambdas"
    files = {"pgext" + EXT: (sample / f"pgext{EXT}").read_bytes(), "app.py": b""}
    path = elf_zip(tmp_path / "pgext.zip", files)
    assert loader_verdicts(image, path) == {"pgext" + EXT: ["libpq.so.5"]} == audit_verdicts(path)


# ---- extension modules their package can do without ----


@pytest.mark.network
def test_numba_runs_without_its_openmp_and_tbb_layers(image, tmp_path):
    """numba imports omppool and tbbpool inside try/except ImportError: the loader fails on them
    (no libgomp, no libtbb on Lambda), numba does not."""
    path = zip_of_wheels(pip_download(["numba==0.60.0", "llvmlite==0.43.0"], tmp_path / "w"), tmp_path / "numba.zip")
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
