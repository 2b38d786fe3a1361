"""Which zips the kit wrote, so it never replaces one it did not.

For every zip it writes, the kit keeps a record in its state folder: `outputs/<id>.sha256`, a line
in `sha256sum` format (the zip's SHA-256 and its absolute path; `make clean` checks it with
`sha256sum --check` before removing a zip), and `outputs/<id>.stat` (size and mtime) so an
unchanged zip is recognised without hashing it again. `<id>` is the SHA-256 of the path, cut to 24
hex digits. A zip whose record is missing or no longer matches was not written by the kit (or was
changed since): package refuses to replace it.

`publish` puts a new zip in place (one atomic rename, after which nothing raises); `out_folder`
makes the zip's folder or says in one line why it cannot.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

from lambda_kit.builders.runner import committing
from lambda_kit.common.digests import sha256_file
from lambda_kit.common.errors import KitError, UsageError


def _sha256sum_line(hex_digest: str, path: Path) -> str:
    """One line as `sha256sum` writes it, escaping a name with a newline or backslash as it does."""
    name = str(path)
    if "\n" in name or "\\" in name:
        return "\\" + hex_digest + "  " + name.replace("\\", "\\\\").replace("\n", "\\n") + "\n"
    return f"{hex_digest}  {name}\n"


class OutputRecords:
    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / "outputs"

    def _paths(self, zip_path: Path) -> tuple[Path, Path]:
        ident = hashlib.sha256(os.fsencode(zip_path)).hexdigest()[:24]
        return self.folder / f"{ident}.sha256", self.folder / f"{ident}.stat"

    def written_by_kit(self, zip_path: Path) -> bool:
        """True when the file holds exactly the bytes the kit last wrote there."""
        record, stat_file = self._paths(zip_path)
        try:
            line = record.read_text(encoding="utf-8")
            stat = zip_path.stat()
        except (OSError, UnicodeDecodeError):
            return False
        expected = line.lstrip("\\").split(" ", 1)[0]
        try:
            if stat_file.read_text(encoding="ascii").split() == [str(stat.st_size), str(stat.st_mtime_ns)]:
                return True
        except OSError:
            pass
        return sha256_file(zip_path).hex() == expected

    def check_replaceable(self, zip_path: Path, setting: str = "ZIP") -> None:
        """Before a build: a file at the target that the kit did not write stops it, untouched."""
        if not zip_path.is_file() or self.written_by_kit(zip_path):
            return
        raise KitError(
            "refusing to replace a zip the kit did not write (or that changed since)",
            str(zip_path),
            hint=f"move it away or delete it if it can go, or set {setting} to another file; "
            "make check and make smoke use a zip as it is",
        )

    def commit(self, fresh: Path, out: Path, digest: bytes) -> None:
        """The last step of every build: the new zip replaces the old one (publish), then is recorded."""
        publish(fresh, out)
        self.record(out, digest.hex())  # never raises

    def record(self, zip_path: Path, hex_digest: str) -> None:
        """After the zip is in place. Never raises: the zip is already written, and a lost record
        only means the next build asks before replacing it."""
        record, stat_file = self._paths(zip_path)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stat = zip_path.stat()
            for path, text in (
                (record, _sha256sum_line(hex_digest, zip_path)),
                (stat_file, f"{stat.st_size} {stat.st_mtime_ns}\n"),
            ):
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(path)
        except OSError:
            pass


def out_folder(out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            "cannot create the zip's folder",
            f"{out.parent}: {exc.strerror}",
            hint="set ZIP to a path in a folder you can write",
        ) from None


def publish(fresh: Path, out: Path) -> None:
    """The atomic replace of the zip: a rename (through a sibling temporary file when the run's
    folder is on another file system). Once it starts, a signal no longer fails the run (see
    runner.committing): after it, nothing can raise and no one can say the old zip is untouched."""
    with committing():
        try:
            try:
                os.replace(fresh, out)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                sibling = out.with_name(f".{out.name}.lambda-kit-{os.getpid()}.tmp")
                try:
                    shutil.copyfile(fresh, sibling)
                    os.replace(sibling, out)
                finally:
                    sibling.unlink(missing_ok=True)
        except OSError as exc:
            raise UsageError(
                "cannot write the zip",
                f"{out}: {exc.strerror}",
                hint="set ZIP to a path you can write; the previous zip is untouched",
            ) from None
