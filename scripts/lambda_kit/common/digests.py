"""SHA-256 of a file, and of bytes as a RECORD writes it: the kit's one helper for each. Standard library
only (it runs in the build image)."""

from __future__ import annotations

import base64
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


def record_digest(data: bytes) -> str:
    """The SHA-256 of `data` as a wheel's RECORD writes it: urlsafe base64, no padding (after `sha256=`)."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
