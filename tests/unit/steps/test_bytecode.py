"""COMPILE=1 without Docker: the import graph, hash-based .pyc the importer really uses, and the
audit's bytecode rules on crafted zips. The host's Python stands in for the runtime here."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import HOST_PYTHON, write_zip
from lambda_kit.audit import audit
from lambda_kit.common.errors import UsageError
from lambda_kit.plan.buildplan import PackageSettings, resolve
from lambda_kit.steps import bytecode
from lambda_kit.zips import zipwriter

OTHER = "3.12" if HOST_PYTHON != "3.12" else "3.11"

# A module graph with every construct the static graph must (not) follow.
TREE = {
    "app.py": "import json\nimport pkg.api\nfrom shop import orders\n\n"
    "def handler(e, c):\n    import lazy\n    return orders.total()\n",
    "pkg/__init__.py": "from .util import helper\ntry:\n    import fast\nexcept ImportError:\n    fast = None\n",
    "pkg/api.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import typed_only\n"
    "class A:\n    from . import inner\n",
    "pkg/util.py": "helper = 1\n",
    "pkg/inner.py": "x = 2\n",
    "pkg/unused.py": "y = 3\n",
    "shop/orders.py": "from ..pkg import util  # climbs out of the top: ignored\ndef total():\n    return 3\n",
    "fast.py": "z = 1\n",
    "lazy.py": "never = 1\n",
    "typed_only.py": "never = 2\n",
    "broken.py": "def (:\n",
}


def write_tree(root: Path, files: dict[str, str] = TREE) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_magic_table_agrees_with_this_interpreter_and_severities_with_the_audit():
    assert bytecode.magic_bytes(HOST_PYTHON) == importlib.util.MAGIC_NUMBER
    assert bytecode.cache_tag(HOST_PYTHON) == sys.implementation.cache_tag
    assert {severity for severity, _ in bytecode.RULES.values()} <= {audit.ERROR, audit.WARNING}
    assert set(bytecode.RULES) <= set(audit.RULES)


def test_import_graph_follows_import_time_statements_only(tmp_path):
    root = write_tree(tmp_path)
    closure = bytecode.import_closure(root, ["app"])
    # namespace package shop/ has no __init__.py: walked, nothing to compile for it
    assert closure == [
        "app.py",
        "fast.py",
        "pkg/__init__.py",
        "pkg/api.py",
        "pkg/inner.py",
        "pkg/util.py",
        "shop/orders.py",
    ]
    index = bytecode.module_index(root)
    assert bytecode.top_level_modules(root, index) == ["app", "broken", "fast", "lazy", "pkg", "shop", "typed_only"]
    assert "broken.py" in bytecode.import_closure(root, ["broken"])  # listed; the compiler skips it


def compile_all(root: Path, names: list[str]) -> dict[str, bytes]:
    written = bytecode.compile_tree(root, names, bytecode.DEPENDENCY_MODE)
    return {name: (root / name).read_bytes() for name in written}


def test_compiled_bytecode_is_hash_based_matches_its_source_and_is_reproducible(tmp_path):
    first = write_tree(tmp_path / "a")
    (first / "pkg" / "__pycache__").mkdir()
    (first / "pkg" / "__pycache__" / "stale.cpython-39.pyc").write_bytes(b"old")
    names = sorted(bytecode.module_index(first).values())
    pycs = compile_all(first, names)
    assert (
        "pkg/__pycache__/stale.cpython-39.pyc" not in pycs
        and not (first / "pkg/__pycache__/stale.cpython-39.pyc").exists()
    )
    assert len(pycs) == len(names) - 1  # broken.py does not compile: left to the importer
    for name, data in pycs.items():
        source = (first / bytecode.source_of(name)).read_bytes()
        assert data[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(data[4:8], "little") == bytecode.FLAG_HASH  # hash-based, unchecked
        assert data[8:16] == importlib.util.source_hash(source)
        assert bytecode.judge(data, source, name, HOST_PYTHON) is None
    # Another folder, the other order of work on disk: the same bytes.
    second = write_tree(tmp_path / "b", dict(reversed(list(TREE.items()))))
    assert compile_all(second, list(reversed(names))) == pycs


READ_ONLY_IMPORT = r"""
import sys
from importlib import _bootstrap_external
compiled = []
original = _bootstrap_external.SourceLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    compiled.append(path[len(sys.argv[1]) + 1:])
    return original(self, data, path, *args, **kwargs)
_bootstrap_external.SourceLoader.source_to_code = spy
sys.path.insert(0, sys.argv[1])
import app
import lazy
print(" ".join(sorted(compiled)))
"""


def test_importing_from_a_read_only_copy_compiles_only_what_has_no_bytecode(tmp_path):
    root = write_tree(tmp_path / "build")
    root.joinpath("broken.py").unlink()
    root.joinpath("shop", "orders.py").write_text("def total():\n    return 3\n")  # importable for real
    bytecode.compile_tree(root, bytecode.import_closure(root, ["app"]), bytecode.DEPENDENCY_MODE)
    task = tmp_path / "task"
    entries = zipwriter.collect(root, bytecode=True)
    zipwriter.write_zip(zipwriter.merge(("code", entries)), tmp_path / "f.zip", zipwriter.zip_date_time(None))
    with zipfile.ZipFile(tmp_path / "f.zip") as zf:
        zf.extractall(task)  # as Lambda unpacks it: every time the zip's fixed one
    # Read-only as /var/task (root ignores that, hence also -B: the importer writes nothing back).
    for path in [*sorted(task.rglob("*"), reverse=True), task]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-B", "-c", READ_ONLY_IMPORT, str(task)], capture_output=True, text=True, check=True
        )
    finally:
        for path in [task, *task.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert result.stdout.split() == ["lazy.py"]  # imported only in a function: not compiled, so the check can fail
    assert not any(p.name.endswith(".pyc") for p in task.rglob("lazy*"))


def pyc_of(tmp_path: Path, text: str, mode: py_compile.PycInvalidationMode) -> bytes:
    source = tmp_path / "m.py"
    source.write_text(text)
    target = tmp_path / "m.pyc"
    py_compile.compile(str(source), cfile=str(target), invalidation_mode=mode, doraise=True)
    return target.read_bytes()


def test_audit_flags_bytecode_the_runtime_would_not_use_and_passes_valid_bytecode(tmp_path):
    unchecked = pyc_of(tmp_path, "x = 1\n", py_compile.PycInvalidationMode.UNCHECKED_HASH)
    checked = pyc_of(tmp_path, "x = 1\n", py_compile.PycInvalidationMode.CHECKED_HASH)
    timestamp = pyc_of(tmp_path, "x = 1\n", py_compile.PycInvalidationMode.TIMESTAMP)
    other = bytecode.magic_bytes(OTHER) + unchecked[4:]
    tag, other_tag = bytecode.cache_tag(HOST_PYTHON), bytecode.cache_tag(OTHER)
    members = {
        "good.py": b"x = 1\n",
        f"__pycache__/good.{tag}.pyc": unchecked,
        "checked.py": b"x = 1\n",
        f"__pycache__/checked.{tag}.pyc": checked,
        "old.py": b"x = 1\n",
        f"__pycache__/old.{tag}.pyc": other,
        f"__pycache__/old.{other_tag}.pyc": other,
        "stamp.py": b"x = 1\n",
        f"__pycache__/stamp.{tag}.pyc": timestamp,
        f"gone/__pycache__/lost.{tag}.pyc": unchecked,
        "legacy.pyc": unchecked,
        "edited.py": b"x = 2\n",
        f"__pycache__/edited.{tag}.pyc": unchecked,
        "opt.py": b"x = 1\n",
        f"__pycache__/opt.{tag}.opt-1.pyc": unchecked,
        "tool.pyo": b"old",
        "__pycache__/notes.txt": b"",
    }
    report = audit.audit_zip(
        write_zip(tmp_path / "crafted.zip", members), runtime=HOST_PYTHON, native_cache=tmp_path / "native.json"
    )
    found = {f.id: sorted(f.entries) for f in report.findings}
    assert found == {
        "leftover-bytecode": ["__pycache__/notes.txt", "tool.pyo"],
        "bytecode-python": sorted(
            [f"__pycache__/old.{tag}.pyc", f"__pycache__/old.{other_tag}.pyc", f"__pycache__/opt.{tag}.opt-1.pyc"]
        ),
        "bytecode-timestamp": [f"__pycache__/stamp.{tag}.pyc"],
        "bytecode-orphan": [f"gone/__pycache__/lost.{tag}.pyc", "legacy.pyc"],
        "bytecode-stale": [f"__pycache__/edited.{tag}.pyc"],
    }
    assert report.errors == 1  # stale bytecode: the runtime would run code that is not the source
    # Verdicts are remembered by CRC: a second audit reads the same answers from the cache.
    remembered = json.loads((tmp_path / "native.json").read_text())["entries"]  # the verified facts file
    assert sum(k.startswith("bytecode|") for k in remembered) == 9
    again = audit.audit_zip(tmp_path / "crafted.zip", runtime=HOST_PYTHON, native_cache=tmp_path / "native.json")
    assert {f.id: sorted(f.entries) for f in again.findings} == found


def test_collect_keeps_only_pyc_in_pycache_when_asked(tmp_path):
    root = write_tree(tmp_path, {"a.py": "", "__pycache__/a.cpython-311.pyc": "", "b.pyc": "", "c.pyo": ""})
    assert sorted(zipwriter.collect(root)) == ["a.py"]
    assert sorted(zipwriter.collect(root, bytecode=True)) == ["__pycache__/", "__pycache__/a.cpython-311.pyc", "a.py"]


def test_compile_with_the_local_builder_needs_the_runtimes_python(sample):
    settings = PackageSettings(
        kit_dir=sample,
        pipfile=sample / "Pipfile",
        src=sample / "lambdas",
        out=sample / "build.zip",
        state_dir=sample / ".lambda-kit",
        runtime=OTHER,
        builder="local",
        compile=True,
    )
    with pytest.raises(UsageError) as caught:
        resolve(settings)
    assert str(caught.value).startswith("COMPILE=1 with BUILDER=local needs the host's Python to be the runtime's")
    assert caught.value.value == f"host Python {HOST_PYTHON}, runtime python{OTHER}"
    resolve(dataclasses.replace(settings, runtime=HOST_PYTHON))  # the same Python: fine


def test_profile_names_are_checked_and_add_their_import_closure(tmp_path):
    root = write_tree(tmp_path / "tree")
    good = tmp_path / "good.imports"
    good.write_text("lazy.py\npkg/unused.py\nnot/here.py\n\n")
    names = bytecode.read_profile(good)
    index = bytecode.module_index(root)
    assert bytecode.profile_modules(names, index) == ["lazy", "pkg.unused"]
    assert {"lazy.py", "pkg/unused.py"} <= set(
        bytecode.import_closure(root, ["app", *bytecode.profile_modules(names, index)])
    )
    for bad in ("../etc/passwd.py\n", "/abs/x.py\n", "pkg/x.so\n", "a/../b.py\n"):
        (tmp_path / "bad.imports").write_text(bad)
        with pytest.raises(ValueError):
            bytecode.read_profile(tmp_path / "bad.imports")


def test_the_codes_checked_bytecode_gives_way_to_a_source_edited_after_the_build(tmp_path):
    root = write_tree(tmp_path, {"app.py": "VALUE = 'built'\n", "dep.py": "VALUE = 'built'\n"})
    bytecode.compile_tree(root, ["app.py"], bytecode.CODE_MODE)
    bytecode.compile_tree(root, ["dep.py"], bytecode.DEPENDENCY_MODE)  # removes app's: compile once per folder
    assert [p.name for p in (root / "__pycache__").iterdir()] == [f"dep.{sys.implementation.cache_tag}.pyc"]
    bytecode.compile_tree(root, ["app.py", "dep.py"], bytecode.CODE_MODE)
    pyc = (root / "__pycache__" / f"app.{sys.implementation.cache_tag}.pyc").read_bytes()
    assert int.from_bytes(pyc[4:8], "little") == bytecode.FLAG_HASH | bytecode.FLAG_CHECK
    (root / "app.py").write_text("VALUE = 'edited'\n")  # as the console editor would
    shown = subprocess.run(
        [
            sys.executable,
            "-I",
            "-B",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import app; print(app.VALUE)",
            str(root),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "edited"
