"""The `native-needed` audit rule: every library an extension module pulls in must be found the way
Lambda's loader finds it (`elflinks`: glibc's ld.so search, breadth first, with inherited RPATH,
LD_LIBRARY_PATH, RUNPATH, `$ORIGIN`, sonames already loaded and the runtime's own libraries).

What the runtime loads directly is each extension module Python's importer would load: from the
zip root (/var/task) and from what layers put on /opt/python (and its site-packages), a name whose
folders and module name are identifiers and whose suffix is one the runtime imports; a plain
`name.so` only if it exports `PyInit_name` (else it is a library, e.g. one ctypes loads). A library the
loader would not find from one of them is an error naming the chain, or a warning
(`native-optional`) when the package imports that module only under try/except ImportError
(guardedimports). A native file that no
extension module reaches (one `ctypes` may load by its full path) is walked on its own: what it
would not find is a warning (`native-unreached`, shared with auditnative's findings for files no
extension module loads). The ELF facts (needs, paths, soname, class, machine) are cached by name,
CRC and size, beside the audit's other native facts.
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile

from lambda_kit.audit import elflinks, guardedimports, runtimelibs
from lambda_kit.audit.auditcore import ERROR, WARNING, Collector, Context, encrypted
from lambda_kit.audit.auditnative import IN_MEMORY, UNREACHED, NativeCache, extension_suffixes
from lambda_kit.common import runtimes
from lambda_kit.zips.zipreader import EntryError, ZipReader

NEEDED_FACTS = "audit-needed.json"  # the ELF links cache, beside the audit's native-facts file
RULES = {
    "native-needed": (ERROR, "add the library to the zip (or a layer's lib/), or install a wheel that bundles it"),
    "native-optional": (
        WARNING,
        "its package runs without it (the import is guarded); add the library only if you need that part",
    ),
    "native-unreached": (
        WARNING,
        "no extension module loads these: fine unless your code loads one itself (ctypes); then fix what it names",
    ),
}

NEEDED = "extension modules needing a library the loader would not find"
OPTIONAL = (
    "extension modules their package imports only inside try/except ImportError, "
    "needing a library the loader would not find"
)
TASK, OPT = "/var/task", "/opt"


def is_native_name(name: str) -> bool:
    base = posixpath.basename(name)
    return base.endswith(".so") or ".so." in base


def import_roots(runtime: runtimes.Runtime) -> tuple[str, ...]:
    """The folders on Lambda's sys.path that a zip or a layer fills, as absolute paths."""
    return (f"{TASK}/", f"{OPT}/python/lib/python{runtime.version}/site-packages/", f"{OPT}/python/")


def importable(path: str, suffixes: tuple[str, ...], roots: tuple[str, ...]) -> bool:
    """Whether Python's importer would load `path` as an extension module from one of `roots`."""
    for root in roots:
        if path.startswith(root):
            *folders, base = path[len(root) :].split("/")
            if not all(p.isidentifier() for p in folders):
                return False
            return any(base.endswith(s) and base[: -len(s)].isidentifier() for s in suffixes)
    return False


def init_symbol(path: str) -> str:
    """For a plain `.so` (no interpreter tag), the PyInit_ function it must export to be an extension
    module; "" for other names. (libfoo.so in an importable folder is a library ctypes loads.)"""
    base = posixpath.basename(path)
    stem = base[:-3]
    if not base.endswith(".so") or "." in stem or not stem.isidentifier():
        return ""
    return f"PyInit_{stem}"


class _Files:
    """The function's files as the loader sees them (zip under /var/task, layers under /opt), each
    one's ELF links read at most once: from the facts cache, else from a bounded, spooled copy."""

    def __init__(self, ctx: Context, found: Collector, cache: NativeCache, stack: contextlib.ExitStack) -> None:
        self.ctx, self.found, self.cache = ctx, found, cache
        self.where: dict[str, tuple[ZipReader | None, object]] = {}
        self.memo: dict[str, elflinks.ElfLinks | None] = {}
        for layer in ctx.layers:
            try:
                lz = stack.enter_context(ZipReader(layer))
            except Exception:  # noqa: BLE001  ZipReadError, OSError, zipfile's errors on hostile bytes
                continue  # check_sizes names a layer it cannot read
            self.where.update({f"{OPT}/{i.filename}": (lz, i) for i in lz.infos if not i.is_dir()})
        self.where.update({f"{TASK}/{i.filename}": (None, i) for i in ctx.files})  # the zip last: it wins

    def links(self, path: str) -> elflinks.ElfLinks | None:
        if path not in self.memo:
            self.memo[path] = self._read(*self.where[path])  # KeyError: no such file
        return self.memo[path]

    def _read(self, lz: ZipReader | None, info) -> elflinks.ElfLinks | None:
        if encrypted(info) or (lz is None and info.filename in self.ctx.damaged):
            return elflinks.OPAQUE
        if info.file_size > runtimes.MAX_UNZIPPED_TOTAL:
            return elflinks.OPAQUE  # over Lambda's limit alone: size-unzipped's error, not read past it
        known = self.cache.get(info)
        if known is not None:
            if known[0] is None:
                return None
            links = elflinks.ElfLinks.from_fact(known[0])
            if links is not None:
                return links  # else an older kit's entry: read again
        with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY) as spool:
            if lz is None:
                if not self.ctx.copy_to(info, spool, runtimes.MAX_UNZIPPED_TOTAL, self.found):
                    return elflinks.OPAQUE
            else:
                try:
                    for data in lz.chunks(info, runtimes.MAX_UNZIPPED_TOTAL, True):
                        spool.write(data)
                except EntryError:
                    return elflinks.OPAQUE
            spool.seek(0)
            links = elflinks.read_links(spool, init_symbol(info.filename))
        self.cache.put(info, [links.fact() if links is not None else None])
        return links


def _shown(path: str) -> str:
    return path[len(TASK) + 1 :] if path.startswith(f"{TASK}/") else path


def check_needed(ctx: Context, found: Collector) -> None:
    """native-needed, and native-unreached for what no extension module loads. Leaves in
    `ctx.loaded` the zip's entries an extension module loads (auditnative judges the others
    as warnings)."""
    rt, arch = ctx.runtime, ctx.arch
    cache = NativeCache(ctx.native_cache.with_name(NEEDED_FACTS) if ctx.native_cache else None, ctx.warn)
    with contextlib.ExitStack() as stack:
        files = _Files(ctx, found, cache, stack)
        loader = elflinks.Loader(files.links, runtimelibs.provided(rt), arch, runtimelibs.preloaded(rt))
        try:
            optional = _optional_check(ctx, found)
            ctx.loaded = _check_loaded(files, loader, rt, arch, found, optional)
        except elflinks.OverBounds as exc:
            ctx.loaded = None  # every native file is then judged as loaded
            found.add(
                "native-needed",
                NEEDED,
                f"{_shown(str(exc))}: not resolved, over the audit's bounds ({elflinks.MAX_PROBES:,} places searched)",
            )
    cache.save()


def _optional_check(ctx: Context, found: Collector):
    """A function: whether the zip's own Python files import an extension module (a path under
    /var/task) only inside try/except ImportError (guardedimports)."""
    infos = {i.filename: i for i in ctx.files}

    def read(name: str) -> bytes | None:
        info = infos[name]
        return ctx.read(info, guardedimports.MAX_SOURCE, found) if info.file_size <= guardedimports.MAX_SOURCE else None

    def optional(path: str) -> bool:
        if not path.startswith(f"{TASK}/"):
            return False
        *folders, base = path[len(TASK) + 1 :].split("/")
        module = ".".join([*folders, base.split(".")[0]])
        names = guardedimports.source_files(module, infos)
        return guardedimports.is_optional(module, ((n, read(n)) for n in names))

    return optional


def _check_loaded(files: _Files, loader: elflinks.Loader, rt: runtimes.Runtime, arch: str, found: Collector, optional):
    """The walks from each extension module, then from each file none of them reaches; the zip's
    entries the extension modules load."""
    suffixes, roots = extension_suffixes(rt, arch), import_roots(rt)
    # Named for any architecture: a file built for another one is loaded there (native-arch's error).
    any_arch = tuple(s for a in runtimes.ARCHITECTURES for s in extension_suffixes(rt, a))
    reached: set[str] = set()
    for path in sorted(p for p in files.where if importable(p, any_arch, roots)):
        links = files.links(path)
        if init_symbol(path) and links is not None and links.init != init_symbol(path):
            continue  # a library in a package folder, not an extension module
        reached.add(path)
        if links is None or links.machine != arch or links.elfclass != 64 or not importable(path, suffixes, roots):
            continue  # not ELF, another machine: auditnative's findings; ld.so loads nothing for it
        walk = loader.load(path)
        reached.update(walk.loaded)
        rule, message = ("native-optional", OPTIONAL) if walk.missing and optional(path) else ("native-needed", NEEDED)
        for missing in walk.missing:
            found.add(rule, message, missing.shown(_shown))
    _check_unreached(files, loader, reached, found)
    return {p[len(TASK) + 1 :] for p in reached if p.startswith(f"{TASK}/")}


def _check_unreached(files: _Files, loader: elflinks.Loader, reached: set[str], found: Collector) -> None:
    """Each native file of the zip no extension module reaches, loaded on its own (ctypes with a
    full path); one that another such file loads is judged with that file, not alone."""
    walks = {}
    for path in sorted(p for p in files.where if p.startswith(f"{TASK}/") and is_native_name(p)):
        if path in reached:
            continue
        links = files.links(path)
        if links is not None and links is not elflinks.OPAQUE and links.machine == loader.machine:
            walks[path] = loader.load(path)
    pulled = {p for walk in walks.values() for p in walk.loaded[1:]}
    for path, walk in walks.items():
        if path not in pulled:
            for missing in walk.missing:
                found.add("native-unreached", UNREACHED, missing.shown(_shown))
