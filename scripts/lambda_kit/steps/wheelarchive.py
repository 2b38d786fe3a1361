"""A wheel open for unpacking (`Archive`): its directory read by zipfile, its bytes mapped, each
entry's content proven to be exactly its file (size, CRC, end of the deflate stream). Used by
`wheelinstall`, which lays the files out as pip does.

Standard library only: runs in the build image and on the host.
"""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
import zlib
from collections.abc import Generator
from pathlib import Path

from lambda_kit.common.errors import WheelError
from lambda_kit.zips.zipreader import escape

CHUNK = 1 << 20  # bytes hashed, inflated or compared at a time
STREAM_CHUNK = 1 << 18  # compressed bytes given to the inflater at a time


Identity = tuple  # (st_ino, st_size, st_mtime_ns, st_ctime_ns): a file as it was when stat'ed


def identity(st: os.stat_result) -> Identity:
    """What changes when a file is written, replaced or has its mode changed."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Archive:
    """A wheel open for unpacking: its directory read by zipfile, its bytes mapped into memory (not
    read: the page cache holds them) from the same open file, each entry's content checked. Slices
    of the map are copies (bytes), so no view of it outlives an error and closing always unmaps."""

    def __init__(self, path: Path) -> None:
        self.filename = str(path)
        self._file = open(path, "rb")
        try:
            self.identity = identity(os.fstat(self._file.fileno()))
            self._zip = zipfile.ZipFile(self._file)
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            self._file.close()
            raise WheelError(f"{path.name} cannot be read as a zip ({exc})", "pin another version") from None
        self.infolist = self._zip.infolist

    def close(self) -> None:
        self._map.close()
        self._zip.close()
        self._file.close()

    def read(self, name: str) -> bytes:
        """The content of entry `name` (KeyError when the wheel has none), checked as `content`."""
        return b"".join(self.content(self._zip.getinfo(name)))

    @staticmethod
    def streamed(info: zipfile.ZipInfo) -> bool:
        """Read by inflating its raw deflate stream here (the stream an `Origin` names), not by zipfile.
        An empty file some tools store as a deflate entry without any stream goes to zipfile."""
        return info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size > 0

    def content(self, info: zipfile.ZipInfo) -> Generator[bytes, None, None]:
        """The entry's bytes, at most CHUNK at a time, proven to be exactly the `file_size` bytes
        with the CRC the directory gives; a WheelError naming the entry otherwise."""
        if info.flag_bits & 0x1:
            raise self._damaged(info, "is encrypted")
        return self._inflated(info) if self.streamed(info) else self._through_zipfile(info)

    def _damaged(self, info: zipfile.ZipInfo, what: str) -> WheelError:
        name = Path(self.filename).name
        return WheelError(f"{name} has a damaged entry: {escape(info.filename)} {what}", "pin another version")

    def _stream_span(self, info: zipfile.ZipInfo) -> tuple[int, int]:
        """Where the entry's compressed bytes start and end in the wheel (its local header checked)."""
        start = info.header_offset
        header = self._map[start : start + 30]
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise self._damaged(info, "has no local header where the directory points")
        name_length, extra_length = struct.unpack_from("<HH", header, 26)
        name = self._map[start + 30 : start + 30 + name_length]
        if name.decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace") != info.orig_filename:
            raise self._damaged(info, "has another name in its local header")  # as zipfile refuses it
        begin = start + 30 + name_length + extra_length
        end = begin + info.compress_size
        if end > len(self._map):
            raise self._damaged(info, "is cut short: its compressed bytes run past the end of the wheel")
        return begin, end

    def _inflated(self, info: zipfile.ZipInfo) -> Generator[bytes, None, None]:
        begin, end = self._stream_span(info)
        declared = info.file_size
        inflater = zlib.decompressobj(-15)
        size = crc = 0
        position = begin
        while not inflater.eof:
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif position < end:
                data = self._map[position : min(position + STREAM_CHUNK, end)]
                position += len(data)
            else:
                data = b""
            try:  # never more than one byte past the declared size, however much the data expands
                out = inflater.decompress(data, min(CHUNK, declared + 1 - size))
            except zlib.error as exc:
                raise self._damaged(info, f"is not a valid deflate stream ({exc})") from None
            if not out and not data:
                break  # no input left and nothing more comes out: the stream ends early
            size += len(out)
            if size > declared:
                raise self._damaged(info, f"inflates to more than the {declared:,} bytes its header declares")
            if out:
                crc = zlib.crc32(out, crc)
                yield out
        if not inflater.eof:
            raise self._damaged(info, f"ends early: its deflate stream stops after {size:,} of {declared:,} bytes")
        left = end - position + len(inflater.unused_data) + len(inflater.unconsumed_tail)
        if left:
            raise self._damaged(info, f"has {left:,} bytes after the end of its deflate stream")
        if size != declared:
            raise self._damaged(info, f"inflates to {size:,} bytes, not the {declared:,} its header declares")
        if crc != info.CRC:
            raise self._damaged(info, f"has a CRC mismatch ({crc:08x}, header {info.CRC:08x})")

    def _through_zipfile(self, info: zipfile.ZipInfo) -> Generator[bytes, None, None]:
        """Other methods (stored, bzip2, lzma): zipfile checks the CRC; the size is checked here."""
        size = 0
        try:
            with self._zip.open(info) as stream:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ImportError) as exc:
            raise self._damaged(info, f"cannot be read ({exc})") from None
        if size != info.file_size:
            raise self._damaged(info, f"holds {size:,} bytes, not the {info.file_size:,} its header declares")
