"""The two kinds of CACHE_URL store behind one interface: download (bounded, hashed while it is
written), upload (a temporary name, then into place) and names. `sharedcache` decides what to
fetch and verifies it; nothing here trusts or interprets an object's bytes.

The S3 store talks to botocore directly: the same client and credential chain as boto3's (the
environment, AWS_PROFILE and the config files, SSO, container and instance credentials;
AWS_ENDPOINT_URL), without importing boto3's resource layer and s3transfer, which a fresh agent
would otherwise pay for on its way to the zip. Its client is thread-safe, so a lookup downloads
an object and the digest beside it at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

from lambda_kit.common.errors import CacheUnavailable

CHUNK = 1 << 20


def copy_bounded(read: Callable[[int], bytes], dest: Path, limit: int) -> tuple[int, str]:
    """Copy at most limit + 1 bytes: a caller seeing more than `limit` refuses the object.
    Returns the size and the SHA-256 (hex) of what was written, hashed on the way."""
    total, digest = 0, hashlib.sha256()
    with open(dest, "wb") as out:
        while total <= limit:
            block = read(min(CHUNK, limit + 1 - total))
            if not block:
                break
            digest.update(block)
            out.write(block)
            total += len(block)
    return total, digest.hexdigest()


class FolderStore:
    """A folder on a mount every agent shares. Writes: a hidden temporary name, then rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _unreachable(self, exc: OSError | None = None) -> CacheUnavailable:
        if not self.root.is_dir():
            return CacheUnavailable("the cache folder does not exist", str(self.root))
        return CacheUnavailable(exc.strerror if exc and exc.strerror else str(exc), str(self.root))

    def download(self, name: str, dest: Path, limit: int) -> tuple[int, str] | None:
        """(size, sha256) of what was copied to dest, or None: no such object."""
        try:
            # O_NONBLOCK: a FIFO planted in the store must not hang the build.
            with open(os.open(self.root / name, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise CacheUnavailable("not a regular file", f"{self.root}/{name}")
                return copy_bounded(f.read, dest, limit)
        except FileNotFoundError:
            if not self.root.is_dir():
                raise self._unreachable() from None
            return None
        except OSError as exc:
            raise self._unreachable(exc) from None

    def upload(self, name: str, source: Path) -> None:
        final = self.root / name
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        try:
            if not self.root.is_dir():
                raise self._unreachable()
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp)
            os.replace(tmp, final)
        except OSError as exc:
            raise self._unreachable(exc) from None
        finally:
            tmp.unlink(missing_ok=True)

    def names(self, prefix: str) -> set[str]:
        if not self.root.is_dir():
            raise self._unreachable()
        folder = self.root / prefix
        return {
            prefix + p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }


class S3Store:
    """A bucket prefix, through botocore (standard credential chain, AWS_ENDPOINT_URL). Writes: a
    temporary key, then a server-side copy to the final key."""

    def __init__(self, bucket: str, prefix: str) -> None:
        import botocore.config
        import botocore.exceptions
        import botocore.session

        self.bucket, self.prefix = bucket, f"{prefix}/" if prefix else ""
        self.missing_codes = {"NoSuchKey", "404", "NotFound"}
        self.client_error = botocore.exceptions.ClientError
        self.errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        config = botocore.config.Config(
            connect_timeout=5, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"}
        )
        try:
            self.client = botocore.session.get_session().create_client("s3", config=config)
        except self.errors as exc:  # e.g. a profile named by AWS_PROFILE that the config files lack
            raise self._fail(exc) from None

    def _fail(self, exc: Exception) -> CacheUnavailable:
        if isinstance(exc, self.client_error):
            error = exc.response.get("Error", {})
            return CacheUnavailable(
                f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": "), f"s3://{self.bucket}"
            )
        return CacheUnavailable(str(exc), f"s3://{self.bucket}")

    def download(self, name: str, dest: Path, limit: int) -> tuple[int, str] | None:
        """(size, sha256) of what was copied to dest, or None: no such object."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]
            with body:
                return copy_bounded(body.read, dest, limit)
        except self.client_error as exc:
            if exc.response.get("Error", {}).get("Code") in self.missing_codes:
                return None
            raise self._fail(exc) from None
        except self.errors as exc:
            raise self._fail(exc) from None

    def upload(self, name: str, source: Path) -> None:
        tmp = f"{self.prefix}tmp/{uuid.uuid4().hex}-{name.rsplit('/', 1)[-1]}"
        try:
            with open(source, "rb") as f:
                self.client.put_object(Bucket=self.bucket, Key=tmp, Body=f)
            try:
                self.client.copy_object(
                    Bucket=self.bucket, Key=self.prefix + name, CopySource={"Bucket": self.bucket, "Key": tmp}
                )
            finally:
                self.client.delete_object(Bucket=self.bucket, Key=tmp)
        except self.errors as exc:
            raise self._fail(exc) from None

    def names(self, prefix: str) -> set[str]:
        found = set()
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            ):
                found |= {item["Key"][len(self.prefix) :] for item in page.get("Contents", [])}
        except self.errors as exc:
            raise self._fail(exc) from None
        return found


def open_store(url: str) -> FolderStore | S3Store:
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3Store(bucket, prefix)
    return FolderStore(Path(url))
