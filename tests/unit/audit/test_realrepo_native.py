"""Issue 11, `native-needed`: a library a native file needs must be in the zip (RPATH/RUNPATH with
$ORIGIN, Lambda's library path), in a layer's lib/, or provided by the runtime."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import PROJECTS, ROOT
from lambda_kit.audit import audit, runtimelibs
from lambda_kit.common import runtimes

SAMPLE = PROJECTS / "native-needs"


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(prefix + path.relative_to(folder).as_posix())
                info.create_system, info.external_attr = 3, 0o100755 << 16
                zf.writestr(info, path.read_bytes())
    return dest


def test_libpq_is_needed_and_origin_runpath_resolves(tmp_path):
    path = zip_folder(SAMPLE / "lambdas", tmp_path / "fn.zip")
    report = audit.audit_zip(path, runtime="3.11", arch="x86_64", handler="app.handler")
    needed = [f for f in report.findings if f.id == "native-needed"]
    assert [f.entries for f in needed] == [["pgext.cpython-311-x86_64-linux-gnu.so (libpq.so.5)"]]
    assert needed[0].severity == audit.ERROR

    # Without the library usehelper needs, its $ORIGIN/libs runpath finds nothing either.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("app.py", "usehelper.cpython-311-x86_64-linux-gnu.so"):
        (bare / name).write_bytes((SAMPLE / "lambdas" / name).read_bytes())
    report = audit.audit_zip(zip_folder(bare, tmp_path / "bare.zip"), runtime="3.11", arch="x86_64")
    assert [f.entries for f in report.findings if f.id == "native-needed"] == [
        ["usehelper.cpython-311-x86_64-linux-gnu.so (libhelper.so.1)"]
    ]


def test_a_layer_lib_folder_provides_the_library(tmp_path):
    layer_dir = tmp_path / "layer" / "lib"
    layer_dir.mkdir(parents=True)
    # Any file by that name satisfies the loader's search; the audit checks presence, not content.
    (layer_dir / "libpq.so.5").write_bytes((SAMPLE / "lambdas" / "libs" / "libhelper.so.1").read_bytes())
    layer = zip_folder(tmp_path / "layer", tmp_path / "layer.zip")
    path = zip_folder(SAMPLE / "lambdas", tmp_path / "fn.zip")
    report = audit.audit_zip(path, runtime="3.11", arch="x86_64", layers=[layer])
    assert "native-needed" not in report.ids()


def test_make_check_fails_naming_file_and_library(tmp_path):
    path = zip_folder(SAMPLE / "lambdas", tmp_path / "fn.zip")
    result = subprocess.run(
        [sys.executable, "-m", "lambda_kit", "check", str(path), "--runtime", "3.11"],
        capture_output=True,
        text=True,
        cwd=ROOT / "scripts",
    )
    assert result.returncode == 1
    assert "native-needed" in result.stdout and "pgext.cpython-311-x86_64-linux-gnu.so (libpq.so.5)" in result.stdout


def test_runtime_table_sits_beside_the_runtimes():
    for runtime in runtimes.RUNTIMES.values():
        libs = runtimelibs.provided(runtime)
        assert {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"} <= libs
        assert "libpq.so.5" not in libs
    assert runtimelibs.BY_OS.keys() == {r.os for r in runtimes.RUNTIMES.values()}
