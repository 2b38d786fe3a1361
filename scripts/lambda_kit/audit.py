"""Audit a Lambda zip for what Lambda would reject (or silently break on), before anyone uploads it.

Each rule has a stable id, a severity, the offending entry names and a one-line fix hint. Works on
any zip, not only the kit's. Formats are read with well-kept libraries: pyelftools for ELF,
`packaging` for markers, versions and names; limits and glibc come from `runtimes`.
"""

from __future__ import annotations

import ast
import io
import json
import posixpath
import re
import stat
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from packaging.utils import canonicalize_name, canonicalize_version

from . import bytecode, lockfile, runtimes, zipwriter

ERROR, WARNING = "error", "warning"
MAX_LISTED = 10  # entries named per finding; the count says how many more

# id -> (severity, hint)
RULES = {
    "size-zipped": (WARNING, "upload through S3 (aws lambda update-function-code --s3-bucket ...) or slim the dependencies"),
    "size-unzipped": (ERROR, "move large dependencies to a layer or a container image, or drop unused packages"),
    "perm-file": (ERROR, "Lambda runs as another user: make files world-readable (0644, 0755 for executables)"),
    "perm-dir": (ERROR, "make folders world-traversable (0755)"),
    "leftover-bytecode": (WARNING, "leave out .pyo files and whatever else is in __pycache__ but .pyc"),
    "leftover-pipfile": (WARNING, "leave Pipfile and Pipfile.lock out of the zip"),
    "leftover-secret": (ERROR, "remove secrets from the zip; use environment variables or a secrets manager"),
    "zip-absolute": (ERROR, "write entry names relative to the zip root"),
    "zip-dotdot": (ERROR, "entry names must not climb out of the zip root ('..')"),
    "zip-backslash": (ERROR, "use '/' in entry names (the zip was written on Windows with the wrong separator)"),
    "zip-symlink": (ERROR, "store the file itself, not a symbolic link"),
    "zip-duplicate": (ERROR, "write each name once; rebuild the zip from a clean folder"),
    "zip-encrypted": (ERROR, "Lambda cannot read encrypted entries: zip without a password"),
    "handler-module": (ERROR, "put the handler's module at the zip root (or set the handler to its dotted path)"),
    "handler-function": (ERROR, "define the handler function at the module's top level, or fix the handler name"),
    "lock-missing": (ERROR, "install every [packages] dependency into the zip (make package does)"),
    "lock-version": (ERROR, "rebuild the zip from the current Pipfile.lock"),
    "lock-dev": (ERROR, "leave [dev-packages] out of the zip"),
    "native-not-elf": (ERROR, "install Linux wheels: build in Docker (make package) or pip --platform manylinux..."),
    "native-arch": (ERROR, "install wheels for the function's architecture (ARCH) or change the function's architecture"),
    "native-glibc": (ERROR, "install a wheel built for an older glibc (manylinux tag the runtime accepts), or use a newer runtime"),
    "native-abi": (ERROR, "install wheels for the function's Python version: the importer ignores this file"),
}
RULES.update(bytecode.RULES)  # .pyc for another Python, timestamp-based, orphan, stale

SECRET_NAMES = re.compile(
    r"(^|/)(\.env(\.[^/]*)?|id_(rsa|dsa|ecdsa|ed25519)|\.aws/credentials|\.netrc|\.pypirc|credentials\.json)$"
)
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
HARMLESS_ENV = re.compile(r"\.env\.(example|sample|template|dist)$")
PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----")
AWS_SECRET = re.compile(rb"aws_secret_access_key\s*=")
EXTENSION = re.compile(r"\.(cpython|pypy|graalpy)[^/]*\.so$|\.abi3\.so$")
DIST_INFO = re.compile(r"^([^/]+)-([^/-]+)\.dist-info/$")
ELF_MACHINE = {"EM_X86_64": "x86_64", "EM_AARCH64": "arm64"}


@dataclass
class Finding:
    id: str
    severity: str
    message: str
    entries: list[str] = field(default_factory=list)
    hint: str = ""

    def line(self) -> str:
        shown = ", ".join(self.entries[:MAX_LISTED])
        more = f" (+{len(self.entries) - MAX_LISTED} more)" if len(self.entries) > MAX_LISTED else ""
        names = f": {shown}{more}" if shown else ""
        return f"{self.severity:<7} {self.id:<17} {self.message}{names}"


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


class AuditError(Exception):
    """The zip cannot be audited at all (missing, not a zip)."""

    def __init__(self, message: str, value: str, hint: str = "") -> None:
        super().__init__(message)
        self.value = value
        self.hint = hint


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


class _Collector:
    def __init__(self) -> None:
        self.by_rule: dict[str, list[str]] = {}
        self.messages: dict[str, str] = {}

    def add(self, rule: str, message: str, entry: str | None = None) -> None:
        self.messages.setdefault(rule, message)
        entries = self.by_rule.setdefault(rule, [])
        if entry is not None:
            entries.append(entry)

    def findings(self) -> list[Finding]:
        out = []
        for rule in RULES:  # a stable order: the table's
            if rule in self.by_rule:
                severity, hint = RULES[rule]
                out.append(Finding(rule, severity, self.messages[rule], self.by_rule[rule], hint))
        return out


class _Zip:
    """A zip's entries and their content: its central directory read directly when the zip is
    plain (thousands of entries in milliseconds), zipfile for any other zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zf: zipfile.ZipFile | None = None
        self._f = None
        directory = zipwriter.read_directory(path)
        if directory is None:
            self._zf = zipfile.ZipFile(path)
            self.infos = self._zf.infolist()
        else:
            self._f = open(path, "rb")
            self.infos = directory.records
        self.by_name = {i.filename: i for i in self.infos}

    def read(self, info) -> bytes:
        if self._f is not None:
            data = zipwriter.read_member(self._f, info)
            if data is not None:
                return data
            self._zf = self._zf or zipfile.ZipFile(self.path)  # another compression method
            return self._zf.read(info.filename)
        return self._zf.read(info)

    def __enter__(self) -> "_Zip":
        return self

    def __exit__(self, *exc) -> None:
        if self._f is not None:
            self._f.close()
        if self._zf is not None:
            self._zf.close()


def audit_zip(
    path: Path,
    *,
    runtime: str = "3.12",
    arch: str = "x86_64",
    handler: str | None = None,
    lock: dict | None = None,
    layers: list[Path] = (),
    native_cache: Path | None = None,
) -> Report:
    """`native_cache`: a JSON file remembering what each native file is (by name, CRC and size),
    so a code-only rebuild does not parse the same ELF files again."""
    rt = runtimes.lookup(runtime)
    try:
        zf = _Zip(Path(path))
    except FileNotFoundError:
        raise AuditError("no such zip", str(path), "build it first (make package) or check the path") from None
    except (zipfile.BadZipFile, IsADirectoryError, OSError) as exc:
        raise AuditError("not a zip file", f"{path}: {exc}", "give the path of a deployment zip") from None
    found = _Collector()
    try:
        with zf:
            infos = zf.infos
            files = [i for i in infos if not i.is_dir()]
            _check_structure(infos, found)
            _check_sizes(path, files, layers, found)
            _check_permissions(infos, found)
            _check_leftovers(zf, files, found)
            if handler:
                _check_handler(zf, handler, found)
            if lock is not None:
                _check_lock(infos, lock, rt, arch, found, layers)
            cache = _NativeCache(native_cache)
            _check_native(zf, files, rt, arch, found, cache)
            cache.changed |= bytecode.check_zip(files, zf.read, rt.version, found.add, cache.entries if native_cache else None)
            cache.save()
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise AuditError("the zip is damaged", f"{path}: {exc}", "build it again; if it came from elsewhere, download it again") from None
    return Report(
        zip=str(path),
        runtime=rt.name,
        arch=arch,
        files=len(files),
        zipped_bytes=path.stat().st_size,
        unzipped_bytes=sum(i.file_size for i in files),
        findings=found.findings(),
    )


# Thousands of entries each time: a cheap test finds the few worth a closer look.
ODD_NAME = re.compile(r"^/|^[A-Za-z]:|\.\.|\\")
DRIVE = re.compile(r"^[A-Za-z]:")
PARTS = re.compile(r"[/\\]")


def _check_structure(infos, found: _Collector) -> None:
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
    for info in [i for i in infos if i.flag_bits & 0x1]:
        found.add("zip-encrypted", "encrypted entries", info.filename)


def _check_sizes(path: Path, files, layers, found: _Collector) -> None:
    zipped = path.stat().st_size
    if zipped > runtimes.MAX_ZIPPED_DIRECT_UPLOAD:
        found.add("size-zipped", f"{zipped:,} bytes zipped: over the 50 MB direct-upload limit")
    total = sum(i.file_size for i in files)
    parts = [f"{total:,} bytes in the function"]
    for layer in layers:
        try:
            with zipfile.ZipFile(layer) as lz:
                size = sum(i.file_size for i in lz.infolist() if not i.is_dir())
        except (OSError, zipfile.BadZipFile) as exc:
            raise AuditError("cannot read a layer zip", f"{layer}: {exc}", "give --layer a layer zip") from None
        total += size
        parts.append(f"{size:,} in {Path(layer).name}")
    if total > runtimes.MAX_UNZIPPED_TOTAL:
        found.add(
            "size-unzipped",
            f"{total:,} bytes unzipped ({' + '.join(parts)}): over Lambda's {runtimes.MAX_UNZIPPED_TOTAL:,}",
        )


def _check_permissions(infos, found: _Collector) -> None:
    # A handful of distinct attribute values in thousands of entries: judge each value once.
    judged: dict[tuple[int, int, bool], tuple[str, str] | None] = {}
    for info in infos:
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


def _encrypted(info: zipfile.ZipInfo) -> bool:
    return bool(info.flag_bits & 0x1)  # unreadable without a password; zip-encrypted reports it


LEFTOVER_NAME = re.compile(
    r"\.py[co]$|__pycache__/|^Pipfile|\.env|id_(rsa|dsa|ecdsa|ed25519)$|credentials|\.netrc$|\.pypirc$"
    r"|\.(pem|key|p12|pfx)$|(^|/)config$"
)  # every name a test below can flag matches this


def _check_leftovers(zf: _Zip, files, found: _Collector) -> None:
    for info in [i for i in files if LEFTOVER_NAME.search(i.filename)]:
        name = info.filename
        base = posixpath.basename(name)
        if name.endswith(".pyo") or ("__pycache__/" in name and not name.endswith(".pyc")):  # .pyc: bytecode.py
            found.add("leftover-bytecode", "compiled bytecode", name)
        if name in ("Pipfile", "Pipfile.lock"):
            found.add("leftover-pipfile", "Pipfile files at the zip root", name)
        if HARMLESS_ENV.search(name):
            continue
        if SECRET_NAMES.search(name):
            found.add("leftover-secret", "files that look like secrets", name)
        elif (base.endswith(SECRET_SUFFIXES) or base in ("credentials", "config")) and not _encrypted(info):
            head = zf.read(info)[:65536] if info.file_size <= 1_000_000 else b""
            if PRIVATE_KEY.search(head) or AWS_SECRET.search(head):
                found.add("leftover-secret", "files that look like secrets", name)


def _check_handler(zf: _Zip, handler: str, found: _Collector) -> None:
    module, _, function = handler.rpartition(".")
    stem = module.replace(".", "/")
    names = zf.by_name
    source_name = next((n for n in (f"{stem}.py", f"{stem}/__init__.py") if n in names), None)
    if source_name is None:
        if any(n.startswith(stem + ".") and n.endswith(".so") for n in names):
            return  # a compiled module: its names cannot be read without importing it
        found.add("handler-module", f"the handler's module is not in the zip: {handler}", f"{stem}.py")
        return
    if _encrypted(names[source_name]):
        return
    try:
        tree = ast.parse(zf.read(names[source_name]), filename=source_name)
    except (SyntaxError, ValueError) as exc:
        found.add("handler-function", f"the handler's module does not parse ({exc.msg if hasattr(exc, 'msg') else exc})", source_name)
        return
    if not _defines(tree, function):
        found.add("handler-function", f"{source_name} defines no top-level {function!r}", source_name)


def _defines(tree: ast.Module, name: str) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == name:
                    return True
        if isinstance(node, (ast.If, ast.Try)) and _defines(ast.Module(body=_children(node), type_ignores=[]), name):
            return True
    return False


def _children(node) -> list:
    body = list(node.body) + list(getattr(node, "orelse", []))
    for handler in getattr(node, "handlers", []):
        body += handler.body
    return body + list(getattr(node, "finalbody", []))


LAYER_ROOTS = re.compile(r"^python/(lib/python3\.\d+/site-packages/)?")


def _installed(infos, root: re.Pattern | None = None) -> dict[str, str]:
    """Distributions by their dist-info folders: at the zip root, or under a layer's python/."""
    installed = {}
    for info in [i for i in infos if ".dist-info/" in i.filename]:
        name = info.filename
        if root is not None:
            prefix = root.match(name)
            if not prefix:
                continue
            name = name[prefix.end():]
        match = DIST_INFO.match(name.split("/")[0] + "/")
        if match:
            installed[canonicalize_name(match.group(1))] = match.group(2)
    return installed


def _layer_infos(layers) -> list[zipfile.ZipInfo]:
    infos = []
    for layer in layers:
        with zipfile.ZipFile(layer) as lz:
            infos += lz.infolist()
    return infos


def _check_lock(infos, lock: dict, rt: runtimes.Runtime, arch: str, found: _Collector, layers=()) -> None:
    # A dependency may come from a layer (python/ or python/lib/python3.X/site-packages/).
    installed = {**_installed(_layer_infos(layers), LAYER_ROOTS), **_installed(infos)}
    try:
        plan = lockfile.plan(lock, runtimes.target_environment(rt, arch))
    except lockfile.LockError as exc:
        raise AuditError("the lock cannot be read", str(exc), exc.hint) from None
    wanted = {p.name: p.version[2:] for p in plan.index}
    wanted.update({p.name: None for p in plan.local + plan.urls})
    for name, version in sorted(wanted.items()):
        have = installed.get(name)
        if have is None:
            found.add("lock-missing", "[packages] dependencies missing from the zip", f"{name}=={version}" if version else name)
        elif version and canonicalize_version(have) != canonicalize_version(version):
            found.add("lock-version", "versions that differ from Pipfile.lock", f"{name} {have} (lock: {version})")
    for name in lockfile.develop_only(lock):
        if name in installed:
            found.add("lock-dev", "[dev-packages] in the zip", f"{name}=={installed[name]}")


class _NativeCache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        self.changed = False
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                self.entries = {}

    @staticmethod
    def key(info: zipfile.ZipInfo) -> str:
        return f"{info.filename}|{info.CRC:08x}|{info.file_size}"

    def get(self, info: zipfile.ZipInfo) -> list | None:
        return self.entries.get(self.key(info))

    def put(self, info: zipfile.ZipInfo, value: list) -> None:
        if self.path is not None:
            self.entries[self.key(info)] = value
            self.changed = True

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.entries, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)


def _inspect_native(data: bytes) -> list:
    """["elf", machine, glibc major, glibc minor] or ["other", what it is]."""
    if data[:4] != b"\x7fELF":
        magic = data[:4]
        kind = "Mach-O" if magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe") else (
            "PE" if magic[:2] == b"MZ" else "not ELF")  # fmt: skip
        return ["other", kind]
    try:
        elf = ELFFile(io.BytesIO(data))
        machine = ELF_MACHINE.get(elf["e_machine"], elf["e_machine"])
        glibc = _glibc_needed(elf) or (0, 0)
    except ELFError as exc:
        return ["other", str(exc)]
    return ["elf", machine, glibc[0], glibc[1]]


def _check_native(zf: _Zip, files, rt: runtimes.Runtime, arch: str, found: _Collector, cache: _NativeCache) -> None:
    for info in [i for i in files if ".so" in i.filename]:
        name = info.filename
        base = posixpath.basename(name)
        if not (base.endswith(".so") or ".so." in base) or _encrypted(info):
            continue
        facts = cache.get(info)
        if facts is None:
            facts = _inspect_native(zf.read(info))
            cache.put(info, facts)
        if facts[0] != "elf":
            found.add("native-not-elf", "native files that are not Linux ELF", f"{name} ({facts[1]})")
            continue
        machine, glibc = facts[1], (facts[2], facts[3])
        if machine != arch:
            found.add("native-arch", f"native files not built for {arch}", f"{name} ({machine})")
        # A file built for another architecture carries that architecture in its name too: that is
        # native-arch's finding. native-abi is for names the importer skips for any other reason.
        named_for = machine if machine in runtimes.ARCHITECTURES else arch
        if EXTENSION.search(base) and not base.endswith(extension_suffixes(rt, named_for)[:2]):
            found.add("native-abi", f"extension modules that {rt.name} on {arch} will not import", name)
        if glibc > rt.glibc:
            have = ".".join(map(str, rt.glibc))
            found.add(
                "native-glibc",
                f"native files needing a newer glibc than {rt.name}'s {have}",
                f"{name} (GLIBC_{glibc[0]}.{glibc[1]})",
            )
