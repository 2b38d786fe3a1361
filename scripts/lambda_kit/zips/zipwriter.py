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

This module decides what goes into a zip and in which order (`collect`, `collect_zip`, `merge`) and
writes it (`write_zip`, `extend_zip`); an entry's headers are written by hand in `zipheaders`, and
entries of zips already written are copied by `zipcopy`.

Standard library only: this module runs inside the build container and on the host.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lambda_kit.common.errors import UsageError, ZipBuildError
from lambda_kit.zips import zipdeflate
from lambda_kit.zips.zipcopy import Packed, Sources, adjacent, copy_compressed, copy_run
from lambda_kit.zips.zipheaders import write_compressed, write_streamed
from lambda_kit.zips.zipreader import END, END_SIG, read_directory
from lambda_kit.zips.zipreader import attributes as _attributes

DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can carry
DateTime = tuple[int, int, int, int, int, int]  # a zip entry's (year, month, day, hour, minute, second)

# Never shipped unless COMPILE=1 compiled it for the runtime (collect's `bytecode`).
BYTECODE_SUFFIXES = (".pyc", ".pyo")
BYTECODE_DIRS = ("__pycache__",)


@dataclass(frozen=True)
class Entry:
    name: str  # POSIX path inside the zip; folders end with "/"
    source: Path | None  # None for folders and entries of a packed zip
    mode: int  # 0o644, 0o755
    packed: Packed | None = None

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def zip_date_time(source_date_epoch: str | None = None) -> DateTime:
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
    folder's name ends with "/", and skipping it skips its contents). Symbolic links are followed:
    a zip for Lambda carries their targets."""
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


def write_zip(entries: Iterable[Entry], dest: Path, date_time: DateTime) -> None:
    """Write `entries` (in the order given, see merge) to `dest`, normalised as described in the
    module doc. Entries of a packed zip (`Packed.own`) keep the timestamp they were packed with;
    the others get `date_time`."""
    with zipfile.ZipFile(dest, "w") as zf:
        _write_entries(zf, list(entries), date_time)


def _write_entries(zf: zipfile.ZipFile, entries: list[Entry], date_time: DateTime) -> None:
    files = [_file_source(e) for e in entries if e.packed is None and not e.is_dir]
    deflated = zipdeflate.deflated(files, _workers())
    sources = Sources(e.packed for e in entries)
    try:
        _write_each(zf, entries, date_time, sources, deflated)
    finally:
        deflated.close()  # on an error: stops the threads' work that has not started
        sources.close()


def _file_source(entry: Entry) -> Path:
    """The file an entry deflated here is read from (every file `collect` finds has one)."""
    if entry.source is None:
        raise ZipBuildError(f"{entry.name} has no file to read it from", "report this as a kit bug")
    return entry.source


def _workers() -> int:
    try:
        return zipdeflate.worker_count()
    except ValueError as exc:
        raise ZipBuildError(
            f"{zipdeflate.WORKERS_ENV} is not a whole number of threads, 1 or more ({exc})",
            "set it to e.g. 2, or unset it (the cores this process may use, at most 8)",
        ) from None


def _write_each(
    zf: zipfile.ZipFile,
    entries: list[Entry],
    date_time: DateTime,
    sources: Sources,
    deflated: Iterator[zipdeflate.Deflated | None],
) -> None:
    i = 0
    while i < len(entries):
        entry = entries[i]
        first = _verbatim(entry)
        if first is not None:
            # A run of packed entries that follow each other in their zip, with their final
            # headers already: one copy for the whole run, new central directory records only.
            run = [(entry.name, first)]
            for following in entries[i + 1 :]:
                packed = _verbatim(following)
                if packed is None or not adjacent(run[-1][1], packed, sources):
                    break
                run.append((following.name, packed))
            copy_run(zf, run, sources)
            i += len(run)
            sources.done(i)
            continue
        i += 1
        packed = entry.packed
        # A packed zip's entry keeps its time.
        stamp = packed.info.date_time if packed is not None and packed.own else date_time
        info = zipfile.ZipInfo(entry.name, date_time=stamp)
        info.create_system = 3
        info.extra = b""
        info.external_attr = _attributes(entry.is_dir, entry.mode)
        if entry.is_dir:
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, b"")
        elif packed is not None:
            info.compress_type = packed.info.compress_type
            copy_compressed(zf, info, packed, sources)
            sources.done(i)
        else:
            info.compress_type = zipfile.ZIP_DEFLATED
            done = next(deflated)
            if done is None:
                write_streamed(zf, info, _file_source(entry))
            else:
                write_compressed(zf, info, done.size, done.crc, done.data)


def _verbatim(entry: Entry) -> Packed | None:
    """The entry's packed form when its local header in its zip is exactly the one write_zip would
    write now (never a wheel's: its headers carry the wheel's time, extra fields and versions), else None."""
    packed = entry.packed
    if packed is None or not packed.own:
        return None
    info = packed.info
    verbatim = (
        info.filename == entry.name
        and info.external_attr == _attributes(entry.is_dir, entry.mode)
        and info.flag_bits & ~0x800 == 0
        and info.file_size * 1.05 <= zipfile.ZIP64_LIMIT
    )
    return packed if verbatim else None


# Reading zips (the directory of a plain zip, content with caps) is zipreader's.


def extend_zip(
    base: Path, base_name: str, entries: dict[str, Entry], part_name: str, dest: Path, date_time: DateTime
) -> bool:
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
