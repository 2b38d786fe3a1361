"""How glibc's ld.so finds the shared libraries an object needs: a model of its search, for the
audit's `native-needed` rule (no file is opened here: the caller says what exists and what each
ELF file declares).

The facts (man ld.so(8); glibc elf/dl-load.c `_dl_map_object`, `open_verify`, `open_path`; elf/
dl-deps.c), as this model follows them:

1. Dependencies load breadth first: all DT_NEEDED of the object, in order, then theirs.
2. A name without a slash that matches an object already loaded in the tree (the name it was
   asked by, or its DT_SONAME) is that object. The runtime's own libraries count as loaded.
3. Otherwise the search: if the object asking has no DT_RUNPATH, the DT_RPATH of that object,
   then of the object that loaded it, and on up the load chain (an object with a DT_RUNPATH has
   no DT_RPATH: ld.so ignores it); then LD_LIBRARY_PATH (Lambda's: the runtime's folders first);
   then the asking object's own DT_RUNPATH (never inherited); then the system folders (the
   runtime's libraries again).
4. `$ORIGIN` (or `${ORIGIN}`) is the folder of the object whose entry it is; `$LIB` and
   `$PLATFORM` are Amazon Linux's lib64 and the machine; a relative entry counts from the working
   folder (/var/task on Lambda), an empty one is that folder.
5. A file found with the wrong ELF class or machine is skipped and the search goes on; a file that
   is not ELF at all stops the load ("invalid ELF header").
6. A name with a slash is opened as it is (after `$ORIGIN` expansion).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.hash import GNUHashSection
from elftools.elf.sections import SymbolTableSection

from lambda_kit.audit import runtimelibs

ELF_MACHINE = {"EM_X86_64": "x86_64", "EM_AARCH64": "arm64"}
PLATFORM = {"x86_64": "x86_64", "arm64": "aarch64"}  # what $PLATFORM expands to (AT_PLATFORM)
CWD = "/var/task"  # Lambda's working folder


@dataclass(frozen=True)
class ElfLinks:
    """What one ELF file tells the loader: its needs, search paths, soname, class and machine."""

    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname: str = ""
    elfclass: int = 64
    machine: str = "x86_64"
    init: str = ""  # the PyInit_ symbol it was asked about and exports, if any

    def fact(self) -> list:
        """The cache's JSON shape: [[needed], [rpath], [runpath], [soname, class, machine, init]]."""
        last = [self.soname, str(self.elfclass), self.machine, self.init]
        return [list(self.needed), list(self.rpath), list(self.runpath), last]

    @classmethod
    def from_fact(cls, fact) -> ElfLinks | None:
        """From `fact()`'s shape; None for an older cache entry: read again."""
        try:
            needed, rpath, runpath, (soname, elfclass, machine, init) = fact
            return cls(tuple(needed), tuple(rpath), tuple(runpath), soname, int(elfclass), machine, init)
        except (TypeError, ValueError):
            return None


def _exports(elf: ELFFile, symbol: str) -> bool:
    """Whether the file defines `symbol` for others (its GNU hash table, else its .dynsym)."""
    table = elf.get_section_by_name(".gnu.hash")
    if isinstance(table, GNUHashSection):
        found = table.get_symbol(symbol)
    else:
        dynsym = elf.get_section_by_name(".dynsym")
        found = (dynsym.get_symbol_by_name(symbol) or [None])[0] if isinstance(dynsym, SymbolTableSection) else None
    return found is not None and found["st_shndx"] != "SHN_UNDEF"


def read_links(stream, init: str = "") -> ElfLinks | None:
    """The links of an ELF file (a seekable stream), or None when it is not ELF or not readable.
    `init`: a PyInit_ symbol to look for (a plain `.so` is an extension module only if it has one)."""
    header = stream.read(20)
    if header[:4] != b"\x7fELF" or len(header) < 20:
        return None
    if header[4] != 2:  # not ELFCLASS64: ld.so passes over it on its header alone
        return ElfLinks(elfclass=32 if header[4] == 1 else 0, machine="")
    if header[5] != 1:  # big-endian: ld.so stops there, as for a file that is not ELF
        return None
    stream.seek(0)
    needed, rpath, runpath, soname = [], [], [], ""
    try:
        elf = ELFFile(stream)
        machine = ELF_MACHINE.get(elf["e_machine"], str(elf["e_machine"]))
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    kind = tag.entry.d_tag
                    if kind == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif kind == "DT_RPATH":
                        rpath += tag.rpath.split(":")
                    elif kind == "DT_RUNPATH":
                        runpath += tag.runpath.split(":")
                    elif kind == "DT_SONAME":
                        soname = tag.soname
        elfclass = elf.elfclass
        exported = init if init and _exports(elf, init) else ""
    except (ELFError, ValueError, KeyError, EOFError, OSError, RecursionError, MemoryError):
        return None
    except Exception:  # noqa: BLE001  pyelftools on a hostile file: unreadable, as the loader would find it
        return None
    return ElfLinks(tuple(needed), () if runpath else tuple(rpath), tuple(runpath), soname, elfclass, machine, exported)


OPAQUE = ElfLinks()  # a file that is there but not read (damaged, encrypted): found, needing nothing


@dataclass(frozen=True)
class Missing:
    """A library the loader would not find: the chain of objects from the one loaded first down to
    the one that needs it (paths), the name it asked for, and why."""

    chain: tuple[str, ...]
    name: str
    reason: str = "not found"

    def shown(self, relative: Callable[[str], str] = lambda p: p) -> str:
        """`ext.so -> libA.so.1 -> libB.so.2 (libC.so.3)`: the first as `relative` names it, the others
        by file name."""
        links = [relative(self.chain[0])] + [posixpath.basename(p) for p in self.chain[1:]]
        what = self.name if self.reason == "not found" else f"{self.name}: {self.reason}"
        return f"{' -> '.join(links)} ({what})"


@dataclass
class Walk:
    root: str
    loaded: list[str] = field(default_factory=list)  # files of the zip or layers, the root first
    missing: list[Missing] = field(default_factory=list)


@dataclass
class _Object:
    path: str
    links: ElfLinks
    loader: _Object | None
    dirs: list[str] | None = None  # its search path, once computed

    def chain(self) -> tuple[str, ...]:
        obj, out = self, []
        while obj is not None:
            out.append(obj.path)
            obj = obj.loader
        return tuple(reversed(out))


RUNTIME = object()  # found among the runtime's own libraries
MAX_PROBES = 2_000_000  # places looked at, per audit: the pandas + boto3 zip takes 184, scipy 1.16 1,771


class OverBounds(Exception):
    """The search would look at more places than MAX_PROBES: not a zip anyone ships."""


class Loader:
    """ld.so's search over a set of files. `links(path)`: the ElfLinks of a file that exists (OPAQUE
    for one that is there but unread, None when it is not ELF), KeyError when there is no such
    file. `provided`: sonames the runtime has in its own folders."""

    def __init__(
        self,
        links: Callable[[str], ElfLinks | None],
        provided: frozenset[str],
        machine: str,
        preloaded: frozenset[str] = runtimelibs.GLIBC_SONAMES,
        library_path: tuple[str, ...] = runtimelibs.LD_LIBRARY_PATH,
        runtime_dirs: tuple[str, ...] = runtimelibs.RUNTIME_DIRS,
    ) -> None:
        self.links, self.provided, self.machine = links, provided, machine
        self.probes = MAX_PROBES  # what a hostile zip (thousands of paths, deep chains) may cost
        self.preloaded = preloaded & provided  # in Python's process before any import (libc, libm...)
        self.library_path, self.runtime_dirs = library_path, frozenset(runtime_dirs)

    def _expand(self, entry: str, origin: str) -> str:
        for token, value in (("$ORIGIN", origin), ("$LIB", "lib64"), ("$PLATFORM", PLATFORM.get(self.machine, ""))):
            entry = entry.replace("${" + token[1:] + "}", value).replace(token, value)
        return posixpath.normpath(posixpath.join(CWD, entry))

    def _search_dirs(self, obj: _Object) -> list[str]:
        if obj.dirs is not None:
            return obj.dirs
        dirs: list[str] = []
        if not obj.links.runpath:
            above: _Object | None = obj
            while above is not None:
                origin = posixpath.dirname(above.path)
                dirs += [self._expand(d, origin) for d in above.links.rpath]
                above = above.loader
        dirs += self.library_path
        dirs += [self._expand(d, posixpath.dirname(obj.path)) for d in obj.links.runpath]
        obj.dirs = list(dict.fromkeys(dirs))  # a folder searched again finds nothing new
        return obj.dirs

    def _open(self, path: str) -> ElfLinks | None | str:
        """A file's links; "absent" when there is none, "skip" when ld.so passes over it."""
        try:
            found = self.links(path)
        except KeyError:
            return "absent"
        if found is not None and found is not OPAQUE and (found.elfclass != 64 or found.machine != self.machine):
            return "skip"
        return found

    def load(self, root: str) -> Walk:
        """Everything `root` (a file, loaded by full path: an extension module, a ctypes library)
        pulls in, and what the loader would not find."""
        walk = Walk(root, [root])
        first = self.links(root)
        if first is None:
            return walk
        queue = [_Object(root, first, None)]
        known = {root: queue[0]} | ({first.soname: queue[0]} if first.soname else {})
        done = set(self.preloaded)
        for obj in queue:  # grows while read: breadth first, as ld.so maps dependencies
            for name in obj.links.needed:
                if name in done or name in known:
                    continue
                origin = posixpath.dirname(obj.path)
                if "/" in name:
                    candidates = [self._expand(name, origin)]
                else:
                    candidates = [f"{d}/{name}" for d in self._search_dirs(obj)]
                found, reason = None, "not found"
                self.probes -= len(candidates)
                if self.probes < 0:
                    raise OverBounds(f"{obj.path} ({name})")
                for path in candidates:
                    if posixpath.dirname(path) in self.runtime_dirs:
                        if posixpath.basename(path) in self.provided:
                            found = RUNTIME
                            break
                        continue  # the runtime's folders hold what `provided` lists and nothing else
                    links = self._open(path)
                    if links in ("absent", "skip"):
                        continue
                    if links is None:
                        reason = "invalid ELF header"
                    else:
                        found = _Object(path, links, obj)
                    break
                if found is None and reason == "not found" and "/" not in name and name in self.provided:
                    found = RUNTIME  # the system folders, searched last
                if found is RUNTIME:
                    done.add(name)
                    continue
                if found is None:
                    walk.missing.append(Missing(obj.chain(), name, reason))
                    done.add(name)  # reported once per tree, as ldd lists it once
                    continue
                if found.path in known:  # the same file by another name
                    known[name] = known[found.path]
                    continue
                queue.append(found)
                walk.loaded.append(found.path)
                known.update(
                    {name: found, found.path: found} | ({found.links.soname: found} if found.links.soname else {})
                )
        return walk
