"""SHA-256 of a file: the kit's one helper for it. Standard library only (it runs in the build image)."""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path


def sha256_file(path: Path) -> bytes:
    """A file's SHA-256, read through a memory map (no copy of tens of MB into Python)."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return hashlib.sha256(b"").digest()  # an empty file cannot be mapped
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return hashlib.sha256(data).digest()


def sha256_hex(path: Path) -> str:
    return sha256_file(path).hex()
