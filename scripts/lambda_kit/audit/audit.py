"""Audit a Lambda zip for what Lambda would reject (or silently break on), before anyone uploads it.

Each rule has a stable id, a severity, the offending entry names and a one-line fix hint. Works on
any zip, not only the kit's, and on hostile ones: the zip is read with bounded work (zipreader:
at most MAX_ENTRIES entries, content inflated as a stream with caps), sizes are the bytes actually
inflated, and a lie or a damaged entry is a finding naming it. Formats are read with well-kept
libraries: pyelftools for ELF, `packaging` for markers, versions and names; limits and glibc come
from `runtimes`.

The rules live in modules by what they read: this one the zip's structure, sizes and modes;
auditcontent the handler, leftovers and the lock; auditdeps
what each installed distribution requires; auditnative the native files. A new rule module
adds its RULES table to RULES and its checks to CHECKS below.
"""

from __future__ import annotations

import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from lambda_kit.audit import auditcontent, auditdeps, auditnative, nativeneeds
from lambda_kit.audit.auditcore import ERROR, WARNING, Collector, Context, Finding, encrypted
from lambda_kit.common import runtimes
from lambda_kit.common.errors import AuditError
from lambda_kit.lock.lockfile import Lock
from lambda_kit.steps import bytecode
from lambda_kit.zips.zipreader import EntryError, ZipReader, ZipReadError

__all__ = ["ERROR", "WARNING", "AuditError", "Finding", "Report", "RULES", "audit_zip"]

# id -> (severity, hint): this module's rules
STRUCTURE_RULES = {
    "size-zipped": (
        WARNING,
        "upload through S3 (aws lambda update-function-code --s3-bucket ...) or slim the dependencies",
    ),
    "size-unzipped": (ERROR, "move large dependencies to a layer or a container image, or drop unused packages"),
    "zip-corrupt": (
        ERROR,
        "build the zip again; if it came from elsewhere, download it again (do not upload this one)",
    ),
    "perm-file": (ERROR, "Lambda runs as another user: make files world-readable (0644, 0755 for executables)"),
    "perm-dir": (ERROR, "make folders world-traversable (0755)"),
    "zip-absolute": (ERROR, "write entry names relative to the zip root"),
    "zip-dotdot": (ERROR, "entry names must not climb out of the zip root ('..')"),
    "zip-backslash": (ERROR, "use '/' in entry names (the zip was written on Windows with the wrong separator)"),
    "zip-symlink": (ERROR, "store the file itself, not a symbolic link"),
    "zip-duplicate": (ERROR, "write each name once; rebuild the zip from a clean folder"),
    "zip-encrypted": (ERROR, "Lambda cannot read encrypted entries: zip without a password"),
}
RULES = {
    **STRUCTURE_RULES,
    **auditcontent.RULES,
    **auditdeps.RULES,
    **auditnative.RULES,
    **nativeneeds.RULES,
    **bytecode.RULES,
}  # the report's order


@dataclass
class Report:
    zip: str
    runtime: str
    arch: str
    files: int
    zipped_bytes: int
    unzipped_bytes: int
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(f.severity == ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == WARNING for f in self.findings)

    def ids(self) -> list[str]:
        return [f.id for f in self.findings]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["errors"], data["warnings"] = self.errors, self.warnings
        return data


def audit_zip(
    path: Path,
    *,
    runtime: str = runtimes.DEFAULT_RUNTIME,
    arch: str = runtimes.DEFAULT_ARCH,
    handler: str | None = None,
    lock: Lock | None = None,
    layers: list[Path] = (),
    native_cache: Path | None = None,
    inflate_all: bool = True,
    warn: Callable[[str], None] | None = None,
) -> Report:
    """`native_cache`: a JSON file remembering what each native file is (by name, CRC and size),
    so a code-only rebuild does not parse the same ELF files again; only for zips the kit wrote.
    `inflate_all=False` trusts the declared sizes (a zip this kit just wrote from verified parts);
    entries that are read are checked either way."""
    path = Path(path)
    rt = runtimes.lookup(runtime)
    try:
        zf = ZipReader(path)
    except FileNotFoundError:
        raise AuditError("no such zip", str(path), "build it first (make package) or check the path") from None
    except ZipReadError as exc:
        raise AuditError(
            "the zip is over the kit's bounds", f"{path}: {exc}", "a Lambda zip has far fewer entries"
        ) from None
    except Exception as exc:  # noqa: BLE001  IsADirectoryError, BadZipFile, and zipfile's other errors on hostile bytes
        raise AuditError("not a zip file", f"{path}: {exc}", "give the path of a deployment zip") from None
    found = Collector(RULES)
    with zf:
        ctx = Context(zf, path, rt, arch, handler, lock, list(layers), native_cache, inflate_all, warn=warn)
        ctx.cache = auditnative.NativeCache(native_cache, warn)  # native facts and bytecode verdicts
        for check in CHECKS:
            check(ctx, found)
        ctx.cache.save()
        unzipped = ctx.unzipped_bytes
    return Report(
        zip=str(path),
        runtime=rt.name,
        arch=arch,
        files=len(ctx.files),
        zipped_bytes=path.stat().st_size,
        unzipped_bytes=unzipped,
        findings=found.findings(),
    )


# Thousands of entries each time: a cheap test finds the few worth a closer look.
ODD_NAME = re.compile(r"^/|^[A-Za-z]:|\.\.|\\")
DRIVE = re.compile(r"^[A-Za-z]:")
PARTS = re.compile(r"[/\\]")


def check_structure(ctx: Context, found: Collector) -> None:
    infos = ctx.infos
    for info in [i for i in infos if ODD_NAME.search(i.orig_filename)]:
        # zipfile turns "\" into "/" in filename on Windows only; orig_filename keeps what was stored.
        raw = info.orig_filename
        if raw.startswith("/") or DRIVE.match(raw):
            found.add("zip-absolute", "absolute entry names", raw)
        if ".." in PARTS.split(raw):
            found.add("zip-dotdot", "entry names with '..' parts", raw)
        if "\\" in raw:
            found.add("zip-backslash", "entry names with backslashes", raw)
    for info in [i for i in infos if i.create_system == 3 and i.external_attr >> 16 & 0o170000 == stat.S_IFLNK]:
        found.add("zip-symlink", "symbolic link entries", info.filename)
    if len({i.filename for i in infos}) != len(infos):
        seen = set()
        for info in infos:
            if info.filename in seen:
                found.add("zip-duplicate", "names stored more than once", info.filename)
            seen.add(info.filename)
    for info in [i for i in infos if encrypted(i)]:
        found.add("zip-encrypted", "encrypted entries", info.filename)


def _unzipped(ctx: Context, zf: ZipReader, files, budget: int, found: Collector | None) -> int:
    """The bytes `files` inflate to: declared, or (inflate_all) measured, stopping once over
    `budget` (the answer is then budget + 1: over the limit, however far)."""
    if not ctx.inflate_all:
        return sum(i.file_size for i in files)
    total = 0
    for info in files:
        if encrypted(info) or info.filename in ctx.damaged:
            total += info.file_size if encrypted(info) else 0
            continue
        try:
            total += zf.measure(info, budget - total + 1)
        except EntryError as exc:
            if exc.over_cap:  # sound or not, over the limit: size-unzipped's finding
                return budget + 1
            if found is None:
                raise
            ctx.mark_damaged(exc, found)
        if total > budget:
            return budget + 1
    return total


def check_sizes(ctx: Context, found: Collector) -> None:
    zipped = ctx.path.stat().st_size
    if zipped > runtimes.MAX_ZIPPED_DIRECT_UPLOAD:
        found.add("size-zipped", f"{zipped:,} bytes zipped: over the 50 MB direct-upload limit")
    limit = runtimes.MAX_UNZIPPED_TOTAL
    total = ctx.unzipped_bytes = _unzipped(ctx, ctx.zf, ctx.files, limit, found)
    parts = [f"{total:,} bytes in the function" if total <= limit else f"over {limit:,} bytes in the function"]
    for layer in ctx.layers:
        try:
            with ZipReader(layer) as lz:
                size = _unzipped(ctx, lz, [i for i in lz.infos if not i.is_dir()], max(limit - total, 0), None)
        except (EntryError, ZipReadError, OSError, zipfile.BadZipFile) as exc:
            raise AuditError("cannot read a layer zip", f"{layer}: {exc}", "give --layer a layer zip") from None
        total += size
        parts.append(f"{size:,} in {Path(layer).name}")
    if total > limit:
        found.add("size-unzipped", f"{' + '.join(parts)}: over Lambda's {limit:,} bytes unzipped")


def check_permissions(ctx: Context, found: Collector) -> None:
    # A handful of distinct attribute values in thousands of entries: judge each value once.
    judged: dict[tuple[int, int, bool], tuple[str, str] | None] = {}
    for info in ctx.infos:
        key = (info.create_system, info.external_attr, info.filename.endswith("/"))
        if key not in judged:
            judged[key] = _permission_problem(*key)
        problem = judged[key]
        if problem is not None:
            found.add(problem[0], problem[1], f"{info.filename} ({stat.S_IMODE(info.external_attr >> 16):04o})")


def _permission_problem(create_system: int, external_attr: int, is_dir: bool) -> tuple[str, str] | None:
    mode = external_attr >> 16
    if create_system != 3 or not mode or stat.S_ISLNK(mode):
        return None
    if is_dir:
        return None if mode & 0o005 == 0o005 else ("perm-dir", "folders others cannot enter")
    return None if mode & 0o004 else ("perm-file", "files others cannot read")


BYTECODE_CAP = 16 << 20  # a .pyc or its source read for the bytecode rules


def check_bytecode(ctx: Context, found: Collector) -> None:
    """bytecode.py's rules (.pyc for another Python, timestamp-based, orphan, stale), each file read
    with a cap; its verdicts are remembered in the native-facts cache."""

    def read(info) -> bytes:
        return ctx.read(info, BYTECODE_CAP, found) or b""

    memo = ctx.cache.entries if ctx.native_cache else None
    ctx.cache.changed |= bytecode.check_zip(ctx.files, read, ctx.runtime.version, found.add, memo)


CHECKS = (
    check_structure,
    check_sizes,
    check_permissions,
    auditcontent.check_leftovers,
    auditcontent.check_handler,
    auditcontent.check_lock,
    auditdeps.check_closure,
    nativeneeds.check_needed,  # before check_native: it leaves which native files are loaded
    auditnative.check_native,
    check_bytecode,
)
