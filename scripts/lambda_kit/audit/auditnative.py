"""Audit rules for native files (.so): ELF or not, architecture, glibc, extension module names.

pyelftools reads each file from a temporary copy (a .so may be tens of MB: never held in memory);
a cache remembers what each file is, by name, CRC and size, so a code-only rebuild does not parse
the same files again. The cache is the kit's own file, verified by its SHA-256 before use.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tempfile
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from lambda_kit.audit.auditcore import ERROR, WARNING, Collector, Context, encrypted
from lambda_kit.common import runtimes

RULES = {
    "native-not-elf": (ERROR, "install Linux wheels: build in Docker (make package) or pip --platform manylinux..."),
    "native-arch": (
        ERROR,
        "install wheels for the function's architecture (ARCH) or change the function's architecture",
    ),
    "native-glibc": (
        ERROR,
        "install a wheel built for an older glibc (manylinux tag the runtime accepts), or use a newer runtime",
    ),
    "native-abi": (ERROR, "install wheels for the function's Python version: the importer ignores this file"),
    "native-abi-unused": (
        WARNING,
        "the module is imported from its file for this Python; the other one is dead weight a package ships",
    ),
}

EXTENSION = re.compile(r"\.(cpython|pypy|graalpy)[^/]*\.so$|\.abi3\.so$")
ELF_MACHINE = {"EM_X86_64": "x86_64", "EM_AARCH64": "arm64"}
UNREACHED = "native files no extension module loads, which would fail if loaded on their own"
IN_MEMORY = 8 << 20  # a native file bigger than this is inflated to a temporary file


def _glibc_needed(elf: ELFFile) -> tuple[int, int] | None:
    best = None
    for section in elf.iter_sections():
        if not isinstance(section, GNUVerNeedSection):
            continue
        for _, auxiliaries in section.iter_versions():
            for aux in auxiliaries:
                found = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", aux.name)
                if found:
                    version = (int(found.group(1)), int(found.group(2)))
                    best = version if best is None or version > best else best
    return best


def extension_suffixes(runtime: runtimes.Runtime, arch: str) -> tuple[str, ...]:
    """The names CPython on Lambda imports extension modules from (importlib's EXTENSION_SUFFIXES there)."""
    machine = runtimes.ARCHITECTURES[arch][1]
    return (f".cpython-{runtime.version.replace('.', '')}-{machine}-linux-gnu.so", ".abi3.so", ".so")


def _digest(entries: dict) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def load_facts(path: Path) -> dict:
    """The entries of a facts file ({"sha256": digest of the entries' JSON, "entries": {...}});
    ValueError when it is not one or does not verify."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        entries = stored["entries"]
        ok = isinstance(entries, dict) and stored["sha256"] == _digest(entries)
    except (KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a facts file ({exc})") from None
    if not ok:
        raise ValueError("SHA-256 mismatch")
    return entries


def save_facts(path: Path, entries: dict) -> None:
    """Written to a unique temporary name and renamed: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"sha256": _digest(entries), "entries": entries}, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class NativeCache:
    """What each native file is (and bytecode verdicts), in a facts file that is verified before
    use: a file that does not verify is ignored (and rewritten), never trusted."""

    def __init__(self, path: Path | None, warn=None) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        self.changed = False
        if path is None or not path.is_file():
            return
        try:
            self.entries = load_facts(path)
        except (OSError, ValueError) as exc:
            if warn is not None:
                warn(f"ignoring the audit's native-file cache {path} ({exc}); it is rebuilt")
            self.changed = True

    @staticmethod
    def key(info) -> str:
        return f"{info.filename}|{info.CRC:08x}|{info.file_size}"

    def get(self, info) -> list | None:
        return self.entries.get(self.key(info))

    def put(self, info, value: list) -> None:
        if self.path is not None:
            self.entries[self.key(info)] = value
            self.changed = True

    def save(self) -> None:
        if self.path is not None and self.changed:
            save_facts(self.path, self.entries)


def _inspect_native(stream) -> list:
    """["elf", machine, glibc major, glibc minor] or ["other", what it is]."""
    stream.seek(0)
    magic = stream.read(4)
    if magic != b"\x7fELF":
        kind = (
            "Mach-O"
            if magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
            else ("PE" if magic[:2] == b"MZ" else "not ELF")
        )
        return ["other", kind]
    stream.seek(0)
    try:
        elf = ELFFile(stream)
        machine = ELF_MACHINE.get(elf["e_machine"], elf["e_machine"])
        glibc = _glibc_needed(elf) or (0, 0)
    except (ELFError, ValueError, KeyError, EOFError, OSError, RecursionError, MemoryError) as exc:
        return ["other", f"unreadable ELF: {type(exc).__name__}: {exc}"[:200]]
    except Exception as exc:  # noqa: BLE001  pyelftools on a hostile file: any failure is a finding
        return ["other", f"unreadable ELF: {type(exc).__name__}"]
    return ["elf", machine, glibc[0], glibc[1]]


def _importable_beside(ctx: Context, name: str, suffixes: tuple[str, ...]) -> bool:
    """Whether the module a skipped extension file is named for is importable all the same: from
    its file for this runtime, or as source (snowflake-connector-python ships cp311 and cp312
    files of one module in its cp312 wheel)."""
    folder, _, base = name.rpartition("/")
    stem = f"{folder}/{base.split('.')[0]}" if folder else base.split(".")[0]
    names = ctx.zf.by_name
    return any(stem + suffix in names for suffix in (*suffixes, ".py")) or f"{stem}/__init__.py" in names


def _facts(ctx: Context, info, found: Collector) -> list | None:
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY) as spool:
        if not ctx.copy_to(info, spool, runtimes.MAX_UNZIPPED_TOTAL, found):
            return None
        return _inspect_native(spool)


def check_native(ctx: Context, found: Collector) -> None:
    cache = ctx.cache
    rt, arch = ctx.runtime, ctx.arch
    for info in [i for i in ctx.files if ".so" in i.filename]:
        name = info.filename
        base = posixpath.basename(name)
        if not (base.endswith(".so") or ".so." in base) or encrypted(info):
            continue
        if info.file_size > runtimes.MAX_UNZIPPED_TOTAL:
            continue  # one file over Lambda's limit: size-unzipped refuses the zip; it is not read past it
        facts = cache.get(info)
        if facts is None:
            facts = _facts(ctx, info, found)
            if facts is None:
                continue
            cache.put(info, facts)
        loaded = ctx.loaded is None or name in ctx.loaded
        if facts[0] != "elf":
            if loaded:
                found.add("native-not-elf", "native files that are not Linux ELF", f"{name} ({facts[1]})")
            else:
                found.add("native-unreached", UNREACHED, f"{name} ({facts[1]})")
            continue
        machine, glibc = facts[1], (facts[2], facts[3])
        if machine != arch:
            if loaded:
                found.add("native-arch", f"native files not built for {arch}", f"{name} ({machine})")
            else:
                found.add("native-unreached", UNREACHED, f"{name} ({machine})")
        # A file built for another architecture carries that architecture in its name too: that is
        # native-arch's finding. native-abi is for names the importer skips for any other reason.
        named_for = machine if machine in runtimes.ARCHITECTURES else arch
        if EXTENSION.search(base) and not base.endswith(extension_suffixes(rt, named_for)[:2]):
            if _importable_beside(ctx, name, extension_suffixes(rt, arch)):
                found.add(
                    "native-abi-unused",
                    f"extension modules for another Python beside the module {rt.name} imports",
                    name,
                )
            else:
                found.add("native-abi", f"extension modules that {rt.name} on {arch} will not import", name)
        if glibc > rt.glibc:
            needs = f"GLIBC_{glibc[0]}.{glibc[1]}"
            if loaded:
                have = ".".join(map(str, rt.glibc))
                message = f"native files needing a newer glibc than {rt.name}'s {have}"
                found.add("native-glibc", message, f"{name} ({needs})")
            else:
                found.add("native-unreached", UNREACHED, f"{name} ({needs})")
