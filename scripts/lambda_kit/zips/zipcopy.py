"""Entries copied from zips already written: their compressed bytes, never deflated again.

A `Packed` is an entry compressed in another zip: the dependencies' zip the code is added to, or a
wheel whose deflate stream is exactly an installed file (wheelinstall.Origin). A run of entries
zipwriter wrote that follow each other in their zip is copied with its local headers as one block
(`copy_run`); any other packed entry gets this zip's own local header and only its compressed bytes
are copied (`copy_compressed`). The zips are read through memory maps (`Sources`).

Standard library only: this module runs inside the build container and on the host.
"""

from __future__ import annotations

import mmap
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from lambda_kit.common.errors import ZipBuildError
from lambda_kit.zips.zipheaders import end_entry, output, start_entry

COPY_CHUNK = 1 << 20  # compressed bytes copied from a packed zip at a time


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


class Sources:
    """The zips packed entries are copied from, each mapped into memory once (the page cache holds
    it, not this process: tens of MB, not thousands of reads) and unmapped after its last entry.
    Slices of a map are copies (bytes), taken COPY_CHUNK at most at a time."""

    def __init__(self, packed: Iterable[Packed | None]) -> None:
        """`packed`: each entry's, in the order they are written (None: not from a zip)."""
        self._last = {p.archive: i for i, p in enumerate(packed) if p is not None}
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


def adjacent(a: Packed, b: Packed, sources: Sources) -> bool:
    """`b` starts in its zip where `a` ends: the two can be copied as one block."""
    return a.archive == b.archive and _local_end(sources.get(a.archive), a.info) == b.info.header_offset


def copy_run(zf: zipfile.ZipFile, run: list[tuple[str, Packed]], sources: Sources) -> None:
    """Entries (their zip name, where they are packed) that follow each other in one zip, with their
    final headers already: one copy for the whole run, new central directory records only."""
    first, last = run[0][1], run[-1][1]
    archive = sources.get(first.archive)
    start = first.info.header_offset
    if archive[start : start + 4] != b"PK\x03\x04":
        raise ZipBuildError(f"bad local header for {run[0][0]} in a packed zip", "rebuild without the cache (make -B)")
    fp = output(zf)
    fp.seek(zf.start_dir)
    base = fp.tell()
    _copy_bytes(zf, archive, start, _local_end(archive, last.info), run[-1][0])
    for name, packed in run:
        source = packed.info
        info = zipfile.ZipInfo(name, date_time=source.date_time)
        info.create_system = 3
        info.extra = b""
        info.external_attr = source.external_attr
        info.compress_type = source.compress_type
        info.file_size, info.compress_size, info.CRC = source.file_size, source.compress_size, source.CRC
        info.flag_bits = 0  # as writestr leaves it; the UTF-8 name flag is derived when written
        info.header_offset = base + (source.header_offset - start)
        zf.filelist.append(info)
        zf.NameToInfo[info.filename] = info
    zf.start_dir = fp.tell()
    zf._didModify = True  # type: ignore[attr-defined]  # as writestr: close() writes the directory; private


def _copy_bytes(zf: zipfile.ZipFile, archive: mmap.mmap, start: int, end: int, name: str) -> None:
    if end > len(archive):
        raise ZipBuildError(f"{name} is cut short in a packed zip", "rebuild without the cache (make -B)")
    fp = output(zf)
    for at in range(start, end, COPY_CHUNK):
        fp.write(archive[at : min(at + COPY_CHUNK, end)])


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


def copy_compressed(zf: zipfile.ZipFile, info: zipfile.ZipInfo, packed: Packed, sources: Sources) -> None:
    """What ZipFile.writestr does for a seekable file, with the data already compressed in another zip."""
    archive = sources.get(packed.archive)
    start, end = _compressed_span(archive, packed.info)
    start_entry(zf, info, packed.info.file_size, packed.info.CRC, end - start)
    _copy_bytes(zf, archive, start, end, info.filename)
    end_entry(zf, info)
