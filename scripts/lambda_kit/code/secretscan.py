"""Secrets in the user's own files, found by what they hold, not only by their names.

Scans the sources `sources.py` selected (never the installed packages: their test keys and
sample configs are theirs) for private-key blocks and the well-known credential formats. A finding
names the file and the kind, never the secret. Each file is read up to MAX_READ bytes.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from lambda_kit.common.errors import KitError

MAX_READ = 1 << 20  # a credential file is small; a large data file is read this far only

# (kind, pattern, file names it applies to: None for any file)
PATTERNS = (
    ("private key", re.compile(rb"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"), None),
    (
        "AWS access key pair",
        re.compile(rb"(?s)(?:AKIA|ASIA)[A-Z0-9]{16}(?=.*?(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=]))"),
        None,
    ),
    ("AWS secret access key", re.compile(rb"(?i)aws_secret_access_key\s*[=:]\s*[\"']?[A-Za-z0-9/+]{40}"), None),
    ("npm registry token (.npmrc)", re.compile(rb"(?m)^\s*(//[^\s=]+:)?_(authToken|auth|password)\s*=\s*\S+"), None),
    (
        "docker registry auth (config.json)",
        re.compile(rb"(?s)\"auths\"\s*:\s*\{.*?\"auth\"\s*:\s*\"[A-Za-z0-9+/=]{8,}\""),
        None,
    ),
    (
        "URL with a password (.git-credentials)",
        re.compile(rb"(?m)^[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@\S+"),
        lambda base: "git-credentials" in base,
    ),
    (
        "PostgreSQL password file (.pgpass)",
        re.compile(rb"(?m)^[^:\s#]+:[^:\s]+:[^:\s]+:[^:\s]+:\S+"),
        lambda base: "pgpass" in base,
    ),
)


def kinds_in(name: str, data: bytes) -> list[str]:
    """The kinds of secret `data` (the file `name`) holds."""
    base = posixpath.basename(name)
    return [kind for kind, pattern, applies in PATTERNS if (applies is None or applies(base)) and pattern.search(data)]


def scan(files: list[tuple[str, Path]]) -> list[tuple[str, str]]:
    """(zip name, kind) for every secret found in `files` (zip name, path to read)."""
    found = []
    for name, path in files:
        with open(path, "rb") as f:
            data = f.read(MAX_READ)
        found += [(name, kind) for kind in kinds_in(name, data)]
    return found


def refuse_secrets(files: list[tuple[str, Path]]) -> None:
    """One error naming every file that holds a secret, and what kind."""
    found = scan(files)
    if found:
        raise KitError(
            f"{len(found)} secret(s) in the function's own files",
            "; ".join(f"{name}: {kind}" for name, kind in found),
            hint="remove them from SRC or leave them out with EXCLUDE; pass secrets through the environment "
            "or a secrets manager",
        )
