"""COMPILE=1: bytecode the runtime will actually use, for the modules the function imports.

    import_closure   which modules run at import time: a static import graph over a folder
    compile_tree     hash-based .pyc for them, by a given interpreter, in one fresh process
    check_zip        the audit's bytecode rules (another Python, timestamp-based, orphan, stale)

The graph follows module-level `import` statements (also under if/try/with and in class bodies;
not in functions, not under `if TYPE_CHECKING`) to modules that exist in the folder. The compile
runs `python -S bytecode.py compile ROOT` with the names on stdin, sorted, and PYTHONHASHSEED=0:
`.pyc` bytes depend on the process's state (marshal references) and on string hashing (set
constants), so a fresh process in a fixed order gives the same bytes every time.

Standard library only: runs in the build container, on the host, and as that script.
"""

from __future__ import annotations

import ast
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

# CPython's .pyc magic number per runtime (importlib.util.MAGIC_NUMBER's first two bytes, little
# endian, followed by b"\r\n"). One table; a unit test compares the host's entry with importlib.
MAGIC = {"3.10": 3439, "3.11": 3495, "3.12": 3531, "3.13": 3571, "3.14": 3627}
# PEP 552 flags word: bit 0 hash-based, bit 1 check the source. Dependencies: unchecked, the
# importer trusts the .pyc and never reads the source (/var/task is read-only). The code: checked,
# so a source edited after the build (the console editor) is still what runs. See docs/design.md.
FLAG_HASH, FLAG_CHECK = 0b01, 0b10
DEPENDENCY_MODE, CODE_MODE = "unchecked-hash", "checked-hash"
MAX_SOURCE_BYTES = 8 << 20  # a bigger "module" is data, not code: not parsed, not compiled

# Audit rules (audit.py adds them to its table): id -> (severity, hint); severities are audit's.
RULES = {
    "bytecode-python": (
        "warning",
        (
            "the importer ignores bytecode for another Python: build with COMPILE=1 for "
            "the runtime, or leave the .pyc out"
        ),
    ),
    "bytecode-timestamp": (
        "warning",
        ("timestamp-based .pyc never match the zip's fixed times: build with COMPILE=1 (hash-based) or leave them out"),
    ),
    "bytecode-orphan": ("warning", "ship the .py beside its .pyc, or leave the .pyc out"),
    "bytecode-stale": ("error", "rebuild the zip: this .pyc was compiled from another version of its source"),
}
# The profile: source zip names one per line, recorded by `make profile` (a smoke run), compiled
# with their import closure. Its name inside the build context's project/ folder:
PROFILE_NAME = "imports.txt"
PROFILE_LINE = re.compile(r"^[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*)*\.py$")
MAX_PROFILE_BYTES = 1 << 20
CACHED_PYC = re.compile(r"^(?:(.*)/)?__pycache__/([^/]+)\.([a-z]+-\d+)(\.opt-\d+)?\.pyc$")
IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


def magic_bytes(version: str) -> bytes:
    return struct.pack("<H", MAGIC[version]) + b"\r\n"


def cache_tag(version: str) -> str:
    return "cpython-" + version.replace(".", "")


# ---- which modules run at import time ----


def module_index(root: Path) -> dict[str, str]:
    """Importable Python modules under `root`: dotted name -> zip name of its source (a package's
    is its __init__.py; a folder without one is a namespace package, walked but not compiled)."""
    index: dict[str, str] = {}
    for folder, dirnames, filenames in os.walk(root):
        rel = Path(folder).relative_to(root)
        package = ".".join(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if IDENTIFIER.match(d))
        for name in sorted(filenames):
            stem = name[:-3]
            if not name.endswith(".py") or not IDENTIFIER.match(stem):
                continue
            zip_name = (rel / name).as_posix()
            if stem == "__init__":
                if package:
                    index[package] = zip_name
            else:
                index[f"{package}.{stem}" if package else stem] = zip_name
    return index


# The statements with try's blocks: `try`, and from 3.11 `try ... except*`.
if sys.version_info >= (3, 11):
    TRY_NODES = (ast.Try, ast.TryStar)
else:
    TRY_NODES = (ast.Try,)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Dotted names a module's import-time statements may import (candidates: `from a import b`
    gives a and a.b; the caller keeps those that are modules)."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                parent = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{parent}.{base}".strip(".") if base else parent
            if base:
                names.add(base)
                names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
        elif isinstance(node, ast.If):
            if not _type_checking(node.test):
                pending += node.body + node.orelse
        elif isinstance(node, TRY_NODES):
            pending += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, (ast.With, ast.For, ast.While, ast.ClassDef)):
            pending += node.body + getattr(node, "orelse", [])
    return names


def import_closure(root: Path, roots: list[str], index: dict[str, str] | None = None) -> list[str]:
    """Zip names of the sources of `roots` and of every module they import at import time,
    found in `root` (other modules, the standard library's among them, are not followed)."""
    index = module_index(root) if index is None else index
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, then a.b, then a.b.c
            prefix = ".".join(parts[:i])
            if prefix in seen or prefix not in index:
                continue
            seen.add(prefix)
            path = root / index[prefix]
            if path.stat().st_size > MAX_SOURCE_BYTES:
                continue
            try:
                tree = ast.parse(path.read_bytes(), filename=index[prefix])
            except (SyntaxError, ValueError):
                continue  # not code for this Python: left to the importer (compile_tree skips it too)
            pending += imported_names(tree, prefix, index[prefix].endswith("/__init__.py"))
    return sorted(index[name] for name in seen)


def top_level_modules(root: Path, index: dict[str, str]) -> list[str]:
    """What a dependency folder offers to import: its top-level modules and packages."""
    tops = {name.split(".")[0] for name in index}
    return sorted(t for t in tops if not (root / t).name.endswith(".dist-info"))


def read_profile(path: Path) -> list[str]:
    """The profile's names; ValueError (with the offending line) for anything but relative .py names."""
    data = path.read_bytes()
    if len(data) > MAX_PROFILE_BYTES:
        raise ValueError(f"over {MAX_PROFILE_BYTES} bytes")
    names = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    for name in names:
        if not PROFILE_LINE.match(name) or ".." in name.split("/"):
            raise ValueError(f"not a module's zip name: {name[:80]!r}")
    return names


def profile_modules(names: list[str], index: dict[str, str]) -> list[str]:
    """The profile's entries that are modules of this folder, as dotted names."""
    found = {zip_name: module for module, zip_name in index.items()}
    return [found[n] for n in names if n in found]


# ---- compiling ----


def compile_tree(root: Path, names: list[str], mode: str, python: str = sys.executable) -> list[str]:
    """Hash-based .pyc in __pycache__ for the sources `names` (zip names under `root`), by
    `python` in a fresh process. Any bytecode already under `root` goes first, so only these ship.
    Returns the .pyc zip names written; sources that do not compile are left to the importer."""
    for cache in sorted(root.rglob("__pycache__"), reverse=True):
        if cache.is_dir():
            for item in cache.iterdir():
                item.unlink()
            cache.rmdir()
    env = {
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LC_ALL": "C.UTF-8",
        "PATH": os.environ.get("PATH", ""),
    }
    result = subprocess.run(
        [python, "-S", "-s", str(Path(__file__).resolve()), "compile", str(root), mode],
        input="".join(n + "\n" for n in sorted(names)),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"compiling bytecode failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return result.stdout.split()


def _compile_main(root: Path, mode_name: str, names: list[str]) -> int:
    """The fresh process: compile in the order given, print each .pyc's zip name."""
    import importlib.util
    import py_compile

    mode = py_compile.PycInvalidationMode[mode_name.upper().replace("-", "_")]
    for name in names:
        source = root / name
        target = Path(importlib.util.cache_from_source(str(source)))
        try:
            # dfile: the zip name, not this build's folder (the importer sets the real path anyway).
            py_compile.compile(str(source), cfile=str(target), dfile=name, doraise=True, invalidation_mode=mode)
        except py_compile.PyCompileError as exc:
            print(f"lambda-kit: bytecode: {name} left to the importer ({exc.exc_type_name})", file=sys.stderr)
            continue
        print(target.relative_to(root).as_posix())
    return 0


# ---- the audit's rules ----


def source_of(pyc_name: str) -> str:
    """The source a .pyc belongs to: a/__pycache__/m.cpython-311.pyc and legacy a/m.pyc -> a/m.py."""
    cached = CACHED_PYC.match(pyc_name)
    if cached:
        return f"{cached.group(1)}/{cached.group(2)}.py" if cached.group(1) else f"{cached.group(2)}.py"
    return pyc_name[:-1]


def _hash_checkable(version: str) -> bool:
    """This interpreter's source_hash matches the runtime's: the keyed hash is SipHash-1-3 from
    3.11 on and SipHash-2-4 before (the key, the magic number, is passed in)."""
    host = sys.version_info[:2]
    runtime = tuple(map(int, version.split(".")))
    return (host >= (3, 11)) == (runtime >= (3, 11))


def judge(pyc: bytes, source: bytes | None, name: str, version: str) -> tuple[str, str] | None:
    """(rule, message) for one .pyc, or None when the runtime will use it as it is."""
    cached = CACHED_PYC.match(name)
    if pyc[:4] != magic_bytes(version) or (cached and (cached.group(3) != cache_tag(version) or cached.group(4))):
        return "bytecode-python", "bytecode the runtime's Python ignores (another version or optimisation level)"
    if source is None:
        return "bytecode-orphan", "bytecode without its source"
    flags = struct.unpack_from("<I", pyc, 4)[0] if len(pyc) >= 16 else 0
    if not flags & FLAG_HASH:
        return "bytecode-timestamp", "timestamp-based bytecode (useless in a zip)"
    if _hash_checkable(version):
        import _imp

        key = int.from_bytes(magic_bytes(version), "little")
        if _imp.source_hash(key, source) != pyc[8:16]:
            return "bytecode-stale", "bytecode that does not match its source"
    return None


def check_zip(files, read, version: str, add, memo: dict | None = None) -> bool:
    """The audit's hook: judge every .pyc among `files` (zip infos; `read(info)` gives the bytes)
    and `add(rule, message, entry)` each finding. `memo` (the audit's cache) remembers verdicts by
    the CRCs of the .pyc and its source. Returns whether the memo changed."""
    by_name = {i.filename: i for i in files}
    changed = False
    for info in [i for i in files if i.filename.endswith(".pyc")]:
        source = by_name.get(source_of(info.filename))
        key = f"bytecode|{version}|{info.filename}|{info.CRC:08x}|{source.CRC if source else -1:08x}"
        verdict = memo.get(key) if memo is not None else None
        if verdict is None:
            if info.flag_bits & 0x1:
                continue  # encrypted: zip-encrypted reports it
            found = judge(read(info), read(source) if source is not None else None, info.filename, version)
            verdict = list(found) if found else []
            if memo is not None:
                memo[key] = verdict
                changed = True
        if verdict:
            add(verdict[0], verdict[1], info.filename)
    return changed


if __name__ == "__main__":
    if sys.argv[1:2] != ["compile"] or len(sys.argv) != 4 or sys.argv[3] not in (DEPENDENCY_MODE, CODE_MODE):
        sys.exit("usage: python -S bytecode.py compile ROOT checked-hash|unchecked-hash < zip names")
    sys.exit(_compile_main(Path(sys.argv[2]), sys.argv[3], sys.stdin.read().split()))
