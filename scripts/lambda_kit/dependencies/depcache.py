"""The host's local caches of build outputs, in the kit's state folder, verified before use.

`DependencyCache`: deps.zip of recent builds by dependency key. Each is stored as
deps/<key>.<sha256>.zip: written to a unique temporary name and renamed (a reader never sees half a
file, two writers never share a name), and its SHA-256 is checked before it is handed out. A file
that does not match its name is a warning and a rebuild, never a shipped zip.

The wheelhouse (pip's downloads, the next build's starting point) needs no digest of ours: pip
checks every file in it against the lock's SHA-256 hashes (--require-hashes) before using it, and
downloads again a file that does not match. It is swapped in by renames.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from lambda_kit.common.digests import sha256_file

CACHED = re.compile(r"^([0-9a-f]{64})\.([0-9a-f]{64})\.zip$")


class DependencyCache:
    """get(key) -> a verified deps.zip or None; put(key, path). Keeps the keys used last."""

    KEEP = 3  # in one checkout's own state folder
    MACHINE_KEEP = 24  # in the machine's cache, which every checkout and project on the machine shares

    def __init__(self, state_dir: Path, warn: Callable[[str], None] | None = None, keep: int = KEEP) -> None:
        self.folder = state_dir / "deps"
        self.warn = warn or (lambda message: None)
        self.keep = keep

    def _entries(self, key: str | None = None) -> list[tuple[Path, str, str]]:
        if not self.folder.is_dir():
            return []
        found = [(p, *m.groups()) for p in self.folder.iterdir() if (m := CACHED.match(p.name))]
        return [e for e in found if key is None or e[1] == key]

    def get(self, key: str) -> Path | None:
        for path, _, digest in self._entries(key):
            try:
                actual = sha256_file(path).hex()
            except (OSError, ValueError):  # gone meanwhile (another run's cleanup), or empty
                continue
            if actual != digest:
                self.warn(
                    f"the dependency cache {path.name} was changed since it was written "
                    f"(sha256 {actual[:12]}...): it is removed and the dependencies rebuilt"
                )
                path.unlink(missing_ok=True)
                continue
            try:
                os.utime(path)  # recently used: kept longest
            except OSError:
                continue
            return path
        return None

    def put(self, key: str, packed: Path) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        try:
            digest = hashlib.sha256()
            with open(packed, "rb") as src, os.fdopen(fd, "wb") as dst:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
            final = self.folder / f"{key}.{digest.hexdigest()}.zip"
            os.replace(tmp, final)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return self._keep(key, final)

    def adopt(self, key: str, packed: Path, sha256: str) -> Path:
        """Like put, for a file whose SHA-256 the caller computed while writing it (a verified
        download) on this disk: moved in by a rename, not copied and hashed again."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{key}.{sha256}.zip"
        try:
            os.replace(packed, final)
        except OSError:  # another file system after all
            return self.put(key, packed)
        return self._keep(key, final)

    def _keep(self, key: str, final: Path) -> Path:
        """`final` is the key's copy now: older copies of the key, and keys beyond KEEP, removed."""
        for path, _, _ in self._entries(key):
            if path != final:
                path.unlink(missing_ok=True)
        kept = sorted(self._entries(), key=lambda e: _mtime(e[0]), reverse=True)
        for path, _, _ in kept[self.keep :]:
            path.unlink(missing_ok=True)
        return final


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def keep_wheelhouse(fresh: Path, wheelhouse: Path) -> None:
    """The build's downloads become the next build's starting point: moved in beside the old one,
    then swapped by renames (never a half-copied folder under the wheelhouse's name)."""
    if not fresh.is_dir():
        return
    wheelhouse.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=".wheelhouse.", dir=wheelhouse.parent))
    outgoing = incoming.with_name(incoming.name + ".old")
    try:
        shutil.move(str(fresh), str(incoming / "wheels"))
        if wheelhouse.exists():
            os.replace(wheelhouse, outgoing)
        os.replace(incoming / "wheels", wheelhouse)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
        shutil.rmtree(outgoing, ignore_errors=True)
