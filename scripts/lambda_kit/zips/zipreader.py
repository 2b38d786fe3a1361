"""Read zips the kit did not write (or may not trust) with bounded work: the central directory
(at most MAX_ENTRIES records), and each entry's content as a stream of inflated bytes with a cap,
its size and CRC checked against what its header declares.

A header can lie: an entry that declares 100 bytes may inflate to 4 GiB, and a CRC can be damaged.
Nothing here trusts a declared size to allocate memory: content is read in CHUNK pieces, and a
lie, a CRC mismatch or a cap reached is an `EntryError` naming the entry (escaped for printing).

Plain zips (one disk, no zip64, no archive comment, the central directory right before the end
record: what zipwriter writes below 65,535 entries and 4 GiB) are read with struct, thousands of
entries in milliseconds; any other zip through zipfile, after its entry count is checked.

Standard library only: zipwriter imports it, and runs inside the build container too.
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

from lambda_kit.common.errors import printable as escape  # a zip's names, safe to print

CHUNK = 1 << 16  # bytes inflated at a time
MAX_ENTRIES = 200_000  # a zip with more entries is refused before its directory is read


def attributes(is_dir: bool, mode: int) -> int:
    """external_attr: Unix type and mode above, and for folders the MS-DOS folder bit (0x10)."""
    return ((stat.S_IFDIR | 0o755) << 16) | 0x10 if is_dir else (stat.S_IFREG | mode) << 16


class ZipReadError(Exception):
    """The zip as a whole cannot be read within the bounds (too many entries, not a zip)."""


class EntryError(Exception):
    """One entry's content is not what its header says, or is over the cap it was read with."""

    def __init__(self, name: str, reason: str, over_cap: bool = False) -> None:
        super().__init__(f"{escape(name)}: {reason}")
        self.name = name
        self.reason = reason
        self.over_cap = over_cap  # the entry may be sound, only bigger than the reader allowed


CENTRAL = struct.Struct("<4s6H3L5H2L")  # a central directory record's fixed 46 bytes
END = struct.Struct("<4s4H2LH")  # the end of central directory record
CENTRAL_SIG, END_SIG, LOCAL_SIG = b"PK\x01\x02", b"PK\x05\x06", b"PK\x03\x04"


class Record(NamedTuple):
    """One central directory record, with the ZipInfo attribute names the audit reads."""

    filename: str
    orig_filename: str
    create_system: int
    flag_bits: int
    compress_type: int
    dos_time: int
    dos_date: int
    CRC: int
    compress_size: int
    file_size: int
    external_attr: int
    header_offset: int

    @property
    def date_time(self) -> tuple[int, int, int, int, int, int]:
        d, t = self.dos_date, self.dos_time
        return ((d >> 9) + 1980, (d >> 5) & 0xF, d & 0x1F, t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2)

    def is_dir(self) -> bool:
        return self.filename.endswith("/")


@dataclass(frozen=True)
class Directory:
    records: list[Record]
    raw: bytes  # the central directory as stored
    offset: int  # where it starts: the entries end there
    reusable: bool  # every record is one zipwriter writes: copying them gives what write_zip would write


DIR_ATTR = attributes(True, 0o755)
FILE_ATTRS = frozenset({attributes(False, 0o644), attributes(False, 0o755)})
_last: list[Directory] = []  # the directory read last: a zip extended from it re-reads only its new records


def read_directory(path: Path) -> Directory | None:
    """The central directory of a plain zip; None for any other zip (read it with zipfile)."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size < END.size:
            return None
        f.seek(size - END.size)
        sig, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment = END.unpack(f.read(END.size))
        if sig != END_SIG or disk or cd_disk or on_disk != count or comment or cd_offset + cd_size != size - END.size:
            return None
        if count > MAX_ENTRIES:
            raise ZipReadError(f"{count:,} entries: over the {MAX_ENTRIES:,} the kit reads")
        f.seek(cd_offset)
        raw = f.read(cd_size)
    records: list[Record] = []
    pos = 0
    reusable = True
    known = _last[0] if _last else None
    if known is not None and known.raw and len(known.records) <= count and raw.startswith(known.raw):
        # The same bytes give the same records (offsets included: they count from the zip's start).
        records, pos, reusable = list(known.records), len(known.raw), known.reusable
    unpack = CENTRAL.unpack_from
    try:
        for _ in range(count - len(records)):
            # The central directory record's fields in their order, and the Record made of them: as
            # tables, a few lines read better than one field a line.
            (sig, made_by, _extract, flags, method, dos_time, dos_date, crc, csize, usize,
             name_len, extra_len, comment_len, _disk, _internal, external, offset) = unpack(raw, pos)  # fmt: skip
            if sig != CENTRAL_SIG or csize == 0xFFFFFFFF or usize == 0xFFFFFFFF or offset == 0xFFFFFFFF:
                return None
            start = pos + 46
            name = raw[start : start + name_len].decode("utf-8" if flags & 0x800 else "cp437")
            shown = name.partition("\0")[0] if "\0" in name else name
            records.append(Record(shown, name, made_by >> 8, flags, method, dos_time, dos_date, crc, csize, usize,
                                  external, offset))  # fmt: skip
            pos = start + name_len + extra_len + comment_len
            if reusable and (
                extra_len
                or comment_len
                or made_by >> 8 != 3
                or flags & ~0x800
                or usize * 1.05 > zipfile.ZIP64_LIMIT
                or (external != DIR_ATTR if name.endswith("/") else external not in FILE_ATTRS)
            ):
                reusable = False
    except (struct.error, UnicodeDecodeError):
        return None
    if pos != len(raw):
        return None
    directory = Directory(records, raw, cd_offset, reusable)
    _last[:] = [directory]
    return directory


def _zipfile_entry_count(path: Path) -> int:
    """The entry count the end record (zip64's too) declares, before zipfile builds its objects."""
    with open(path, "rb") as f:
        end = zipfile._EndRecData(f)  # type: ignore[attr-defined]  # noqa: SLF001 (zipfile's own end-record reader, zip64 included; private, so not in its stubs)
    if end is None:
        raise zipfile.BadZipFile("File is not a zip file")
    return end[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]  # noqa: SLF001 (the same reader's field; private)


class ZipReader:
    """A zip's entries (`infos`, `by_name`) and their content, read with caps. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._zf: zipfile.ZipFile | None = None
        self.infos: list[zipfile.ZipInfo] | list[Record]  # zipfile's, or the plain zip's own records
        directory = read_directory(self.path)
        if directory is None:
            count = _zipfile_entry_count(self.path)
            if count > MAX_ENTRIES:
                raise ZipReadError(f"{count:,} entries: over the {MAX_ENTRIES:,} the kit reads")
            self._zf = zipfile.ZipFile(self.path)
            self.infos = self._zf.infolist()
        else:
            self.infos = directory.records
        self._f: IO[bytes] = open(self.path, "rb")  # stored and deflated entries: read here, either way
        self.by_name = {i.filename: i for i in self.infos}

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()
        if self._zf is not None:
            self._zf.close()

    def chunks(self, info, cap: int, whole: bool = True) -> Iterator[bytes]:
        """The entry's inflated bytes, CHUNK at a time. More than `cap` bytes is an EntryError (when
        `whole` is False, the first `cap` bytes are given and reading stops there, unchecked).
        With `whole`, the size and CRC are checked against the header at the end."""
        try:
            yield from self._checked(info, cap, whole)
        except EntryError:
            raise
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            OSError,
            NotImplementedError,
            RuntimeError,
            ValueError,
            struct.error,
        ) as exc:
            raise EntryError(info.filename, f"cannot be read ({exc})") from None
        except (ImportError, LookupError) as exc:  # a compression method this Python lacks (bz2, lzma)
            raise EntryError(info.filename, f"cannot be read ({exc})") from None

    def _checked(self, info, cap: int, whole: bool) -> Iterator[bytes]:
        if info.flag_bits & 0x1:
            raise EntryError(info.filename, "is encrypted")
        declared = info.file_size
        if whole and declared > cap:
            raise EntryError(info.filename, f"declares {declared:,} bytes: over the {cap:,} read here", True)
        total, crc = 0, 0
        for data in self._raw_chunks(info):
            if not whole and total + len(data) >= cap:
                yield data[: cap - total]
                return
            total += len(data)
            if total > declared:
                raise EntryError(info.filename, f"inflates to more than the {declared:,} bytes its header declares")
            if total > cap:
                raise EntryError(info.filename, f"inflates to more than {cap:,} bytes", True)
            crc = zlib.crc32(data, crc)
            yield data
        if total != declared:
            raise EntryError(info.filename, f"inflates to {total:,} bytes, not the {declared:,} its header declares")
        if crc != info.CRC:
            raise EntryError(info.filename, f"CRC mismatch ({crc:08x}, header {info.CRC:08x})")

    def _raw_chunks(self, info) -> Iterator[bytes]:
        """Inflated bytes with no checks; at most CHUNK at a time, however much the data expands."""
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            self._zf = self._zf or zipfile.ZipFile(self.path)
            with self._zf.open(info.filename if isinstance(info, Record) else info) as stream:
                stream._expected_crc = None  # type: ignore[attr-defined]  # noqa: SLF001  (checked here, whatever the declared size; ZipExtFile's private field)
                while data := stream.read(CHUNK):
                    yield data
            return
        f = self._f
        f.seek(info.header_offset)
        header = f.read(30)
        if header[:4] != LOCAL_SIG:
            raise EntryError(info.filename, "has no local header where the directory points")
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        position = info.header_offset + 30 + name_len + extra_len
        left = info.compress_size
        inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        while left > 0:
            f.seek(position)
            raw = f.read(min(CHUNK, left))
            if not raw:
                raise EntryError(info.filename, "is cut short")
            position, left = position + len(raw), left - len(raw)
            if inflater is None:
                yield raw
                continue
            data = inflater.decompress(raw, CHUNK)
            while data:
                yield data
                data = inflater.decompress(inflater.unconsumed_tail, CHUNK) if inflater.unconsumed_tail else b""
        if inflater is not None:
            tail = inflater.flush()
            if tail:
                yield tail

    def read(self, info, cap: int, whole: bool = True) -> bytes:
        """The entry's content (checked, at most `cap` bytes); with whole=False its first `cap` bytes."""
        return b"".join(self.chunks(info, cap, whole))

    def measure(self, info, cap: int) -> int:
        """Inflate the entry without keeping it: its real size, checked against its header."""
        return sum(len(data) for data in self.chunks(info, cap))
