"""Write a byte-reproducible deployment zip with Python's zipfile.

Every entry is normalised: one fixed UTC timestamp (SOURCE_DATE_EPOCH if set, else 1980-01-01),
create_system 3 (Unix), mode 0755 when any exec bit is set and 0644 otherwise (folders 0755), no
extra fields, one deflate level. A zip is written in parts (the dependencies, then the code), each
part's names sorted as POSIX paths; entries copied from a packed zip keep the timestamp they were
packed with. The same files give the same bytes on any machine with the same zlib. The files are
deflated on several cores (zipdeflate), the bytes those of one.

The dependency part is packed once; `extend_zip` then adds the code to a copy of it, reusing its
entries and central directory records as they are: a code change costs the code, not the payload.
When it is packed, a file the wheel installer unpacked and nothing changed since is not deflated
again: its wheel's deflate stream, proven to inflate to exactly the file (wheelinstall.Origin), is
copied under this zip's own headers. Those bytes depend on the wheel, not on this zlib.

Standard library only: this module runs inside the build container and on the host.
"""

from __future__ import annotations

import mmap
import os
import shutil
import stat
import struct
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from lambda_kit.common.errors import UsageError, ZipBuildError
from lambda_kit.zips import zipdeflate
from lambda_kit.zips.zipdeflate import COMPRESS_LEVEL  # noqa: F401 (the writer's level, named here too)
from lambda_kit.zips.zipreader import END, END_SIG, read_directory
from lambda_kit.zips.zipreader import attributes as _attributes

DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can carry
COPY_CHUNK = 1 << 20  # compressed bytes copied from a packed zip at a time

# Never shipped unless COMPILE=1 compiled it for the runtime (collect's `bytecode`).
BYTECODE_SUFFIXES = (".pyc", ".pyo")
BYTECODE_DIRS = ("__pycache__",)


@dataclass(frozen=True)
class Packed:
    """An entry already compressed in another zip: its compressed bytes copied, not recompressed.
    `own`: an entry `write_zip` wrote, whose local header is the one it would write now (its
    timestamp is kept, and runs of them are copied with their headers as one block). Not `own`: a
    wheel's deflate stream (wheelinstall.Origin): only the stream, its CRC and sizes are taken; the
    headers, and their timestamp, are this zip's as for a file deflated here."""

    archive: str  # the zip's path (a str: it is a dict key for thousands of entries)
    info: zipfile.ZipInfo
    own: bool = True


@dataclass(frozen=True)
class Entry:
    name: str  # POSIX path inside the zip; folders end with "/"
    source: Path | None  # None for folders and entries of a packed zip
    mode: int  # 0o644, 0o755
    packed: Packed | None = None

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def zip_date_time(source_date_epoch: str | None = None) -> tuple[int, int, int, int, int, int]:
    """The fixed timestamp for every entry, from SOURCE_DATE_EPOCH or the zip epoch."""
    epoch = DOS_EPOCH
    if source_date_epoch not in (None, ""):
        try:
            epoch = int(source_date_epoch)
        except ValueError:
            raise UsageError(
                "SOURCE_DATE_EPOCH is not a whole number of seconds",
                source_date_epoch,
                hint="set it to e.g. $(git log -1 --format=%ct), or unset it",
            ) from None
    return time.gmtime(max(epoch, DOS_EPOCH))[:6]


def normalised_mode(st_mode: int) -> int:
    return 0o755 if st_mode & 0o111 else 0o644


def collect(root: Path, skip: Callable[[str], bool] = lambda name: False, bytecode: bool = False) -> dict[str, Entry]:
    """Every file and folder under `root`, keyed by zip name. Bytecode is left out (with `bytecode`,
    for COMPILE=1, only what is not a .pyc in __pycache__); `skip(name)` leaves out more (a
    folder's name ends with "/", and skipping it skips its contents). Symbolic links are followed: a zip for Lambda carries their targets."""
    root = Path(root)
    entries: dict[str, Entry] = {}
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        rel = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        kept = []
        for d in sorted(dirnames):
            name = f"{prefix}{d}/"
            if (d in BYTECODE_DIRS and not bytecode) or skip(name):
                continue
            kept.append(d)
            entries[name] = Entry(name, None, 0o755)
        dirnames[:] = kept
        compiled_here = bytecode and Path(folder).name in BYTECODE_DIRS
        for f in filenames:
            name = prefix + f
            compiled = compiled_here and f.endswith(".pyc")
            if (f.endswith(BYTECODE_SUFFIXES) and not compiled) or skip(name):
                continue
            path = Path(folder, f)
            try:
                st = path.stat()
            except OSError as exc:
                raise ZipBuildError(f"cannot read {path} ({exc.strerror})", "fix or remove the file") from None
            if not stat.S_ISREG(st.st_mode):
                raise ZipBuildError(f"not a regular file ({path})", "remove it from the folder being zipped")
            entries[name] = Entry(name, path, normalised_mode(st.st_mode))
    return entries


def collect_zip(archive: Path) -> dict[str, Entry]:
    """The entries of a zip `write_zip` wrote, to be copied into another one as they are. Their
    compressed bytes are what compressing the files again would give, so the result is
    byte-identical to a zip written from the files, without the cost of deflating them again."""
    entries: dict[str, Entry] = {}
    source = str(archive)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.filename.endswith("/"):
                entries[info.filename] = Entry(info.filename, None, 0o755, Packed(source, info))
            else:
                mode = stat.S_IMODE(info.external_attr >> 16)
                entries[info.filename] = Entry(info.filename, None, mode, Packed(source, info))
    return entries


def merge(*layers: tuple[str, dict[str, Entry]]) -> list[Entry]:
    """Join named parts (e.g. the dependencies, then the source folder) in that order, each part's
    entries sorted by name. The same file in two parts is an error, not a silent overwrite; a
    folder two parts share is written once, by the first."""
    merged: list[Entry] = []
    owner: dict[str, str] = {}
    for layer_name, entries in layers:
        for name in sorted(entries):
            if name in owner:
                if entries[name].is_dir:
                    continue
                raise shadowing(name, owner[name], layer_name)
            owner[name] = layer_name
            merged.append(entries[name])
    return merged


def shadowing(name: str, first: str, second: str) -> ZipBuildError:
    return ZipBuildError(
        f"{name} comes from both {first} and {second}",
        "rename the file in your source folder so it does not shadow a dependency",
    )


def write_zip(entries: Iterable[Entry], dest: Path, date_time: tuple[int, ...]) -> None:
    """Write `entries` (in the order given, see merge) to `dest`, normalised as described in the
    module doc. Entries of a packed zip (`Packed.own`) keep the timestamp they were packed with;
    the others get `date_time`."""
    with zipfile.ZipFile(dest, "w") as zf:
        _write_entries(zf, list(entries), date_time)


def _write_entries(zf: zipfile.ZipFile, entries: list[Entry], date_time: tuple[int, ...]) -> None:
    files = [e.source for e in entries if e.packed is None and not e.is_dir]
    deflated = zipdeflate.deflated(files, _workers())
    sources = _Sources(entries)
    try:
        _write_each(zf, entries, date_time, sources, deflated)
    finally:
        deflated.close()  # on an error: stops the threads' work that has not started
        sources.close()


def _workers() -> int:
    try:
        return zipdeflate.worker_count()
    except ValueError as exc:
        raise ZipBuildError(
            f"{zipdeflate.WORKERS_ENV} is not a whole number of threads, 1 or more ({exc})",
            "set it to e.g. 2, or unset it (the cores this process may use, at most 8)",
        ) from None


def _write_each(zf: zipfile.ZipFile, entries: list[Entry], date_time: tuple[int, ...], sources: _Sources,
                deflated: Iterator[zipdeflate.Deflated | None]) -> None:  # fmt: skip
    i = 0
    while i < len(entries):
        entry = entries[i]
        if _verbatim(entry):
            # A run of packed entries that follow each other in their zip, with their final
            # headers already: one copy for the whole run, new central directory records only.
            j = i + 1
            while j < len(entries) and _verbatim(entries[j]) and _adjacent(entries[j - 1], entries[j], sources):
                j += 1
            _copy_run(zf, entries[i:j], sources)
            sources.done(j)
            i = j
            continue
        i += 1
        kept = entry.packed is not None and entry.packed.own  # a packed zip's entry keeps its time
        info = zipfile.ZipInfo(entry.name, date_time=entry.packed.info.date_time if kept else date_time)
        info.create_system = 3
        info.extra = b""
        info.external_attr = _attributes(entry.is_dir, entry.mode)
        if entry.is_dir:
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, b"")
        elif entry.packed is not None:
            info.compress_type = entry.packed.info.compress_type
            _copy_compressed(zf, info, entry.packed, sources)
            sources.done(i)
        else:
            info.compress_type = zipfile.ZIP_DEFLATED
            done = next(deflated)
            if done is None:
                _write_streamed(zf, info, entry.source)
            else:
                _write_compressed(zf, info, done.size, done.crc, done.data)


def _verbatim(entry: Entry) -> bool:
    """A packed entry whose local header in its zip is exactly the one write_zip would write now (never
    a wheel's: its headers carry the wheel's time, extra fields and versions)."""
    packed = entry.packed
    if packed is None or not packed.own:
        return False
    info = packed.info
    return (
        info.filename == entry.name
        and info.external_attr == _attributes(entry.is_dir, entry.mode)
        and info.flag_bits & ~0x800 == 0
        and info.file_size * 1.05 <= zipfile.ZIP64_LIMIT
    )


class _Sources:
    """The zips packed entries are copied from, each mapped into memory once (the page cache holds
    it, not this process: tens of MB, not thousands of reads) and unmapped after its last entry.
    Slices of a map are copies (bytes), taken COPY_CHUNK at most at a time."""

    def __init__(self, entries: list[Entry]) -> None:
        self._last = {e.packed.archive: i for i, e in enumerate(entries) if e.packed is not None}
        self._maps: dict[str, mmap.mmap] = {}

    def get(self, archive: str) -> mmap.mmap:
        found = self._maps.get(archive)
        if found is None:
            with open(archive, "rb") as f:
                found = self._maps[archive] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return found

    def done(self, written: int) -> None:
        """Entries before index `written` are in the zip: unmap each zip none of the others needs."""
        for archive in [a for a in self._maps if self._last[a] < written]:
            self._maps.pop(archive).close()

    def close(self) -> None:
        for found in self._maps.values():
            found.close()
        self._maps.clear()


def _local_end(archive: mmap.mmap, info: zipfile.ZipInfo) -> int:
    name_length, extra_length = struct.unpack_from("<HH", archive, info.header_offset + 26)
    return info.header_offset + 30 + name_length + extra_length + info.compress_size


def _adjacent(a: Entry, b: Entry, sources: _Sources) -> bool:
    return (
        a.packed.archive == b.packed.archive
        and _local_end(sources.get(a.packed.archive), a.packed.info) == b.packed.info.header_offset
    )


def _copy_run(zf: zipfile.ZipFile, run: list[Entry], sources: _Sources) -> None:
    archive = sources.get(run[0].packed.archive)
    start = run[0].packed.info.header_offset
    if archive[start : start + 4] != b"PK\x03\x04":
        raise ZipBuildError(
            f"bad local header for {run[0].name} in a packed zip", "rebuild without the cache (make -B)"
        )
    zf.fp.seek(zf.start_dir)
    base = zf.fp.tell()
    _copy_bytes(zf, archive, start, _local_end(archive, run[-1].packed.info), run[-1].name)
    for entry in run:
        source = entry.packed.info
        info = zipfile.ZipInfo(entry.name, date_time=source.date_time)
        info.create_system = 3
        info.extra = b""
        info.external_attr = source.external_attr
        info.compress_type = source.compress_type
        info.file_size, info.compress_size, info.CRC = source.file_size, source.compress_size, source.CRC
        info.flag_bits = 0  # as writestr leaves it; the UTF-8 name flag is derived when written
        info.header_offset = base + (source.header_offset - start)
        zf.filelist.append(info)
        zf.NameToInfo[info.filename] = info
    zf.start_dir = zf.fp.tell()
    zf._didModify = True


def _copy_bytes(zf: zipfile.ZipFile, archive: mmap.mmap, start: int, end: int, name: str) -> None:
    if end > len(archive):
        raise ZipBuildError(f"{name} is cut short in a packed zip", "rebuild without the cache (make -B)")
    for at in range(start, end, COPY_CHUNK):
        zf.fp.write(archive[at : min(at + COPY_CHUNK, end)])


def _compressed_span(archive: mmap.mmap, info: zipfile.ZipInfo) -> tuple[int, int]:
    start = info.header_offset
    if archive[start : start + 4] != b"PK\x03\x04":
        raise ZipBuildError(
            f"bad local header for {info.filename} in a packed zip", "rebuild without the cache (make -B)"
        )
    name_length, extra_length = struct.unpack_from("<HH", archive, start + 26)
    data_start = start + 30 + name_length + extra_length
    if data_start + info.compress_size > len(archive):
        raise ZipBuildError(f"{info.filename} is cut short in a packed zip", "rebuild without the cache (make -B)")
    return data_start, data_start + info.compress_size


def _copy_compressed(zf: zipfile.ZipFile, info: zipfile.ZipInfo, packed: Packed, sources: _Sources) -> None:
    """What ZipFile.writestr does for a seekable file, with the data already compressed in another zip."""
    archive = sources.get(packed.archive)
    start, end = _compressed_span(archive, packed.info)
    _start_entry(zf, info, packed.info.file_size, packed.info.CRC, end - start)
    _copy_bytes(zf, archive, start, end, info.filename)
    _end_entry(zf, info)


def _start_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int, crc: int, compress_size: int) -> bool:
    """The local header, as ZipFile.writestr writes it on a seekable file. Returns zip64."""
    info.file_size, info.compress_size, info.CRC = file_size, compress_size, crc
    info.flag_bits = 0
    zip64 = info.file_size * 1.05 > zipfile.ZIP64_LIMIT  # writestr's own rule
    zf.fp.seek(zf.start_dir)
    info.header_offset = zf.fp.tell()
    zf._writecheck(info)
    zf._didModify = True
    zf.fp.write(info.FileHeader(zip64))
    return zip64


def _end_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    zf.start_dir = zf.fp.tell()
    zf.filelist.append(info)
    zf.NameToInfo[info.filename] = info


def _write_compressed(zf: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int, crc: int, data: bytes) -> None:
    """What ZipFile.writestr does for a seekable file, with the data already compressed."""
    _start_entry(zf, info, file_size, crc, len(data))
    zf.fp.write(data)
    _end_entry(zf, info)


def _write_streamed(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: Path) -> None:
    """A big file deflated into the zip as it is read; its header rewritten with the CRC and sizes
    at the end, as ZipFile.writestr does (the header's length does not change)."""
    zip64 = _start_entry(zf, info, source.stat().st_size, 0, 0)
    crc, size, compressed = zipdeflate.deflate_stream(source, zf.fp.write)
    if not zip64 and max(size, compressed) > zipfile.ZIP64_LIMIT:
        raise ZipBuildError(f"{source} grew past 4 GiB while it was zipped", "build again once nothing writes to it")
    info.file_size, info.compress_size, info.CRC = size, compressed, crc
    end = zf.fp.tell()
    zf.fp.seek(info.header_offset)
    zf.fp.write(info.FileHeader(zip64))
    zf.fp.seek(end)
    _end_entry(zf, info)


# Reading zips (the directory of a plain zip, content with caps) is zipreader's.


def extend_zip(base: Path, base_name: str, entries: dict[str, Entry], part_name: str, dest: Path,
               date_time: tuple[int, ...]) -> bool:  # fmt: skip
    """Write to `dest` what write_zip(merge((base_name, collect_zip(base)), (part_name, entries)))
    writes, byte for byte, without handling the base's entries one by one: its bytes up to the
    central directory are copied in one go, the new entries written after them, and the base's
    central directory records reused as they are. False (nothing written) when `base` is not a
    plain zip write_zip wrote, or the result would need zip64: then write it entry by entry."""
    directory = read_directory(base)
    if directory is None or not directory.reusable or len(directory.records) + len(entries) >= 0xFFFF:
        return False
    names = {r.filename for r in directory.records}
    added = []
    for name in sorted(entries):
        if name in names:
            if entries[name].is_dir:
                continue
            raise shadowing(name, base_name, part_name)
        added.append(entries[name])
    shutil.copyfile(base, dest)
    with open(dest, "r+b") as f:
        f.truncate(directory.offset)
        f.seek(directory.offset)
        with zipfile.ZipFile(f, "w") as zf:
            _write_entries(zf, added, date_time)
            added_directory = zf.start_dir
        f.seek(added_directory)
        tail = f.read()
        count = len(directory.records) + len(added)
        central = directory.raw + tail[: -END.size]
        if tail[-END.size : -END.size + 4] != END_SIG or added_directory + len(central) > zipfile.ZIP64_LIMIT:
            dest.unlink()
            return False
        f.seek(added_directory)
        f.truncate()
        f.write(central)
        f.write(END.pack(END_SIG, 0, 0, count, count, len(central), added_directory, 0))
    return True
