"""The `native-needed` audit rule: every shared library a native file in the zip needs must be found
where Lambda's loader will look, or be one the runtime provides.

Searched, in the loader's order: the file's RPATH (when it has no RUNPATH), LD_LIBRARY_PATH as
Lambda sets it (its /var/task and /opt parts: the zip root, lib/, the layers' lib/), the file's
RUNPATH; `$ORIGIN` is the file's own folder. What the runtime provides is `runtimelibs`. Libraries
found in the zip are checked in turn. The ELF facts (needed, rpath, runpath) are cached by
name, CRC and size, as the audit's other native facts.
"""

from __future__ import annotations

import posixpath
import tempfile
import zipfile

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from . import runtimelibs, runtimes
from .auditcore import ERROR, Collector, Context
from .auditnative import IN_MEMORY, NativeCache

NEEDED_FACTS = "audit-needed.json"  # the ELF links cache, beside the audit's native-facts file
RULES = {"native-needed": (ERROR, "add the library to the zip (or a layer's lib/), or install a wheel that bundles it")}

TASK, OPT = "/var/task", "/opt"
LD_LIBRARY_PATH = (
    "/var/task",
    "/var/task/lib",
    "/opt/lib",
)  # the parts Lambda's LD_LIBRARY_PATH gives the zip and layers


def elf_links(stream) -> tuple[list[str], list[str], list[str]] | None:
    """(needed, rpath, runpath) of an ELF file (a seekable stream), or None for anything else."""
    if stream.read(4) != b"\x7fELF":
        return None
    stream.seek(0)
    needed, rpath, runpath = [], [], []
    try:
        for section in ELFFile(stream).iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_RPATH":
                        rpath += tag.rpath.split(":")
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        runpath += tag.runpath.split(":")
    except ELFError:
        return None
    return needed, rpath, runpath


def _expand(entry: str, origin: str) -> str:
    return posixpath.normpath(entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))


def _links(ctx: Context, info, cache: NativeCache, found: Collector):
    """The file's ELF links, from the verified facts cache or read (bounded, from a spooled copy)."""
    known = cache.get(info)
    if known is not None:
        return known[0]
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY) as spool:
        if not ctx.copy_to(info, spool, runtimes.MAX_UNZIPPED_TOTAL, found):
            return None
        spool.seek(0)
        links = elf_links(spool)
    cache.put(info, [links])
    return links


def _layer_files(layers) -> set[str]:
    files: set[str] = set()
    for layer in layers:
        with zipfile.ZipFile(layer) as lz:
            files |= {f"{OPT}/{n}" for n in lz.namelist() if not n.endswith("/")}
    return files


def check_needed(ctx: Context, found: Collector) -> None:
    """native-needed: each library a native file needs must be in the zip, a layer's lib/ or the runtime."""
    present = {f"{TASK}/{i.filename}" for i in ctx.files} | _layer_files(ctx.layers)
    provided = runtimelibs.provided(ctx.runtime)
    cache = NativeCache(ctx.native_cache.with_name(NEEDED_FACTS) if ctx.native_cache else None, ctx.warn)
    for info in ctx.files:
        base = posixpath.basename(info.filename)
        if not (base.endswith(".so") or ".so." in base) or info.flag_bits & 0x1 or info.filename in ctx.damaged:
            continue
        links = _links(ctx, info, cache, found)
        if not links:
            continue
        needed, rpath, runpath = links
        origin = posixpath.dirname(f"{TASK}/{info.filename}")
        dirs = [] if runpath else [_expand(d, origin) for d in rpath if d]
        dirs += list(LD_LIBRARY_PATH) + [_expand(d, origin) for d in runpath if d]
        for library in needed:
            if library not in provided and "/" not in library and not any(f"{d}/{library}" in present for d in dirs):
                found.add(
                    "native-needed",
                    "native files needing a library Lambda does not provide",
                    f"{info.filename} ({library})",
                )
    cache.save()
