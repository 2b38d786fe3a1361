"""An entry written into an open ZipFile by hand, as `ZipFile.writestr` writes it on a seekable file
(its local header, its data, its central directory record), for data compressed elsewhere: deflated
ahead on other threads (zipdeflate), deflated here as it is read (a big file), or copied from another
zip (zipcopy). zipfile has no public call for any of these; the header bytes are its own
(`ZipInfo.FileHeader`), so they are the bytes writestr would write.

Standard library only: this module runs inside the build container and on the host.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

from lambda_kit.common.errors import ZipBuildError
from lambda_kit.zips import zipdeflate


def output(zf: zipfile.ZipFile) -> IO[bytes]:
    """The zip's file, which a ZipFile holds until it is closed."""
    if zf.fp is None:
        raise ValueError("the zip is closed")
    return zf.fp


def start_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int, crc: int, compress_size: int) -> bool:
    """The local header, as ZipFile.writestr writes it on a seekable file. Returns zip64."""
    info.file_size, info.compress_size, info.CRC = file_size, compress_size, crc
    info.flag_bits = 0
    zip64 = info.file_size * 1.05 > zipfile.ZIP64_LIMIT  # writestr's own rule
    fp = output(zf)
    fp.seek(zf.start_dir)
    info.header_offset = fp.tell()
    zf._writecheck(info)  # type: ignore[attr-defined]  # writestr's own check (names, zip64); private, not in the stubs
    zf._didModify = True  # type: ignore[attr-defined]  # as writestr: close() writes the directory; private
    fp.write(info.FileHeader(zip64))
    return zip64


def end_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    zf.start_dir = output(zf).tell()
    zf.filelist.append(info)
    zf.NameToInfo[info.filename] = info


def write_compressed(zf: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int, crc: int, data: bytes) -> None:
    """What ZipFile.writestr does for a seekable file, with the data already compressed."""
    start_entry(zf, info, file_size, crc, len(data))
    output(zf).write(data)
    end_entry(zf, info)


def write_streamed(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: Path) -> None:
    """A big file deflated into the zip as it is read; its header rewritten with the CRC and sizes
    at the end, as ZipFile.writestr does (the header's length does not change)."""
    zip64 = start_entry(zf, info, source.stat().st_size, 0, 0)
    fp = output(zf)
    crc, size, compressed = zipdeflate.deflate_stream(source, fp.write)
    if not zip64 and max(size, compressed) > zipfile.ZIP64_LIMIT:
        raise ZipBuildError(f"{source} grew past 4 GiB while it was zipped", "build again once nothing writes to it")
    info.file_size, info.compress_size, info.CRC = size, compressed, crc
    end = fp.tell()
    fp.seek(info.header_offset)
    fp.write(info.FileHeader(zip64))
    fp.seek(end)
    end_entry(zf, info)
