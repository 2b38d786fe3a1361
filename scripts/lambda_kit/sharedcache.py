"""CACHE_URL: one dependency cache for a fleet of CI agents, in S3 or in a shared folder.

Layout under the URL (a bucket prefix, or a folder on a shared mount):

    deps/<key>.zip              deps.zip of one dependency key (package.dependency_key)
    deps/<key>.zip.sha256       its SHA-256 (hex), written before the zip
    deps/<key>.natives.json     the audit's facts about its native files (+ .sha256): a fresh agent's
                                audit then parses no ELF file again
    wheels/<sha256>/<file>      a file the lock names, under the lock's own hash of it

On a local miss the kit looks the key up here before building; before a build it fetches the
lock's files it lacks into the wheelhouse (a lock change downloads only what changed); after a
build it pushes what a later build needs. Every object is read with a size bound and verified
against its SHA-256 before use: a bad one is a warning naming it, is ignored, and the build goes
on. Writes go to a temporary name, then are copied (S3) or renamed (folder) into place, so
concurrent pushes of a key are harmless. An unreachable store is a warning, never a failed build.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

from . import audit, auditnative
from .context import file_sha256
from .errors import KitError, UsageError

MAX_OBJECT_BYTES = 1 << 30  # deps.zip is bounded by Lambda's 250 MB unzipped; a larger object is refused
MAX_DIGEST_BYTES = 100
MAX_FACTS_BYTES = 16 << 20
DIGEST = re.compile(r"[0-9a-f]{64}")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # a wheelhouse file named by the store: no path parts
CHUNK = 1 << 20


class CacheUnavailable(KitError):
    """The store cannot be reached or read: a warning, and the build goes on without it."""


def check_settings(url: str, push: str) -> tuple[str, bool]:
    """CACHE_URL and CACHE_PUSH, checked once at the edge. A folder becomes absolute."""
    if push not in ("0", "1", ""):
        raise UsageError("CACHE_PUSH must be 0 or 1", push, hint="CACHE_PUSH=0 makes this agent read-only")
    if not url:
        return "", push != "0"
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not BUCKET.fullmatch(bucket) or ".." in prefix.split("/"):
            raise UsageError("CACHE_URL names no valid S3 bucket", url, hint="CACHE_URL=s3://bucket/prefix")
        if importlib.util.find_spec("boto3") is None:
            raise UsageError(
                "CACHE_URL is an S3 URL but boto3 is not installed in the helper's environment",
                url,
                hint="run through make (it adds boto3 when CACHE_URL starts with s3://), or set LAMBDA_KIT_EXTRAS=aws",
            )
        return f"s3://{bucket}/{prefix.strip('/')}".rstrip("/"), push != "0"
    if "://" in url:
        raise UsageError(
            "CACHE_URL is neither s3:// nor a folder",
            url,
            hint="use s3://bucket/prefix or a folder path (a shared mount)",
        )
    return str(Path(url).expanduser().absolute()), push != "0"


def copy_bounded(read: Callable[[int], bytes], dest: Path, limit: int) -> int:
    """Copy at most limit + 1 bytes: a caller seeing more than `limit` refuses the object."""
    total = 0
    with open(dest, "wb") as out:
        while total <= limit:
            block = read(min(CHUNK, limit + 1 - total))
            if not block:
                break
            out.write(block)
            total += len(block)
    return total


class FolderStore:
    """A folder on a mount every agent shares. Writes: a hidden temporary name, then rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _unreachable(self, exc: OSError | None = None) -> CacheUnavailable:
        if not self.root.is_dir():
            return CacheUnavailable("the cache folder does not exist", str(self.root))
        return CacheUnavailable(exc.strerror if exc and exc.strerror else str(exc), str(self.root))

    def download(self, name: str, dest: Path, limit: int) -> int | None:
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
    """A bucket prefix, through boto3 (standard credential chain, AWS_ENDPOINT_URL). Writes: a
    temporary key, then a server-side copy to the final key."""

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3
        import botocore.config
        import botocore.exceptions

        self.bucket, self.prefix = bucket, f"{prefix}/" if prefix else ""
        self.missing_codes = {"NoSuchKey", "404", "NotFound"}
        self.client_error = botocore.exceptions.ClientError
        self.errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        config = botocore.config.Config(
            connect_timeout=5, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"}
        )
        self.client = boto3.client("s3", config=config)

    def _fail(self, exc: Exception) -> CacheUnavailable:
        if isinstance(exc, self.client_error):
            error = exc.response.get("Error", {})
            return CacheUnavailable(
                f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": "), f"s3://{self.bucket}"
            )
        return CacheUnavailable(str(exc), f"s3://{self.bucket}")

    def download(self, name: str, dest: Path, limit: int) -> int | None:
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


def lock_digests(lock: dict) -> set[str]:
    """The SHA-256 of every file the lock's [packages] name."""
    return {
        h.split(":", 1)[1]
        for e in lock.get("default", {}).values()
        if isinstance(e, dict)
        for h in e.get("hashes", [])
        if h.startswith("sha256:")
    }


class SharedCache:
    """The store as a build sees it: every call is guarded, so a store that fails is reported once
    and left alone for the rest of the run."""

    def __init__(
        self,
        url: str,
        push: bool,
        say: Callable[[str], None],
        native_facts: Path | None = None,
        store: FolderStore | S3Store | None = None,
    ) -> None:
        self.url, self.push, self.say = url, push, say
        self.native_facts = native_facts  # the audit's cache file (audit_zip's native_cache)
        self._store = store
        self.off = False
        self.refused: set[str] = set()  # objects that failed verification here: a push replaces them

    @classmethod
    def for_build(cls, s, say: Callable[[str], None], native_facts: Path) -> SharedCache | None:
        """The store of a build's settings `s` (CACHE_URL, CACHE_PUSH); None without CACHE_URL.
        `native_facts`: the audit's cache file, which a hit from the store fills too."""
        return cls(s.cache_url, s.cache_push, say, native_facts) if s.cache_url else None

    def lookup(self, keys, cache, lock: dict, state_dir: Path) -> Path | None:
        """Before a build: deps.zip for the first of `keys` the store has, into the local `cache`
        (a DependencyCache); on a miss, the lock's files the store has into the wheelhouse."""
        cached = self.restore(list(keys), lambda key, path: cache.put(key, path) or cache.get(key), state_dir)
        if cached is None:
            self.fetch_wheels(lock, state_dir / "wheelhouse")
        return cached

    def _guarded(self, doing: str, action: Callable[[FolderStore | S3Store], object]) -> object:
        if self.off:
            return None
        try:
            if self._store is None:
                self._store = open_store(self.url)
            return action(self._store)
        except CacheUnavailable as exc:
            self.off = True
            self.say(f"lambda-kit: warning: cache {self.url} unreachable while {doing} ({exc}); going on without it")
            return None

    def _refuse(self, name: str, why: str, key: str = "") -> bool:
        self.refused.add(name)
        about = f" (key {key[:12]})" if key else ""
        self.say(f"lambda-kit: warning: cache {self.url}: {name}{about} {why}: ignored")
        return False

    def _fetch(
        self, store, name: str, dest: Path, expected: str, key: str = "", limit: int = MAX_OBJECT_BYTES
    ) -> bool | None:
        """True: dest holds the verified object; None: no such object; False: refused."""
        limit = min(limit, MAX_OBJECT_BYTES)
        size = store.download(name, dest, limit)
        if size is None:
            return None
        if size > limit:
            return self._refuse(name, f"is larger than {limit:,} bytes", key)
        actual = file_sha256(dest)
        if actual != expected:
            return self._refuse(
                name,
                f"does not match its SHA-256 ({size:,} bytes, sha256 {actual[:12]}, expected {expected[:12]})",
                key,
            )
        return True

    def _fetch_beside(self, store, name: str, dest: Path, key: str, limit: int = MAX_OBJECT_BYTES) -> bool | None:
        """An object whose SHA-256 is stored beside it, at name + ".sha256". None: not there."""
        digest_file = dest.with_name(dest.name + ".sha256")
        size = store.download(name + ".sha256", digest_file, MAX_DIGEST_BYTES)
        if size is None:
            return None
        expected = digest_file.read_bytes().decode("ascii", "replace").strip()
        if size > MAX_DIGEST_BYTES or not DIGEST.fullmatch(expected):
            return self._refuse(name + ".sha256", "is not a SHA-256", key)
        return self._fetch(store, name, dest, expected, key, limit)

    def _restore_facts(self, key: str, work: Path) -> None:
        """The audit's facts about this deps.zip's native files, into the local audit cache."""
        if self.native_facts is None:
            return
        name, facts = f"deps/{key}.natives.json", work / "natives.json"
        if self._guarded(
            "fetching the audit's facts", lambda store: self._fetch_beside(store, name, facts, key, MAX_FACTS_BYTES)
        ):
            if not merge_native_facts(facts, self.native_facts):
                self._refuse(name, "is not a table of native file facts", key)

    def restore(self, keys: list[str], put: Callable[[str, Path], Path], scratch: Path) -> Path | None:
        """deps.zip for the first of `keys` the store has, verified, handed to `put` (the local
        cache). `scratch`: a folder on the same disk for the download."""
        started = time.monotonic()

        for key in keys:
            with tempfile.TemporaryDirectory(prefix="shared-", dir=scratch) as tmp:
                work = Path(tmp)
                found = self._guarded("looking up the dependencies",
                                      lambda store, key=key, work=work: self._fetch_beside(store, f"deps/{key}.zip", work / "deps.zip", key))  # fmt: skip
                if found:
                    self._restore_facts(key, work)
                    size = (work / "deps.zip").stat().st_size
                    packed = put(key, work / "deps.zip")
                    self.say(f"lambda-kit: dependencies from cache {self.url} (key {key[:12]}), no build needed "
                             f"({size:,} bytes in {time.monotonic() - started:.1f}s)")  # fmt: skip
                    return packed
        if not self.off and not self.refused:  # a refusal has said why already
            self.say(
                f"lambda-kit: dependencies not in cache {self.url} (key {' or '.join(k[:12] for k in keys)}): building them"
            )
        return None

    def fetch_wheels(self, lock: dict, wheelhouse: Path) -> None:
        """Before a build: the lock's files the wheelhouse lacks, from the store, each verified
        against the lock's hash of it."""
        started = time.monotonic()
        wanted = lock_digests(lock)
        if wheelhouse.is_dir():
            wanted -= {file_sha256(p) for p in wheelhouse.iterdir() if p.is_file()}

        def fetch(store) -> tuple[int, int]:
            count = total = 0
            chosen = {}
            for name in sorted(store.names("wheels/")):
                parts = name.split("/")
                if len(parts) == 3 and parts[1] in wanted and FILE_NAME.fullmatch(parts[2]):
                    chosen.setdefault(parts[1], name)
            if not chosen:
                return 0, 0
            wheelhouse.mkdir(parents=True, exist_ok=True)
            for digest, name in sorted(chosen.items()):
                tmp = wheelhouse / f".{digest}.download"
                try:
                    if self._fetch(store, name, tmp, digest):
                        total += tmp.stat().st_size
                        count += 1
                        os.replace(tmp, wheelhouse / name.split("/")[2])
                finally:
                    tmp.unlink(missing_ok=True)
            return count, total

        got = self._guarded("fetching the wheelhouse", fetch)
        if got and got[0]:
            self.say(f"lambda-kit: {got[0]} of the lock's files from cache {self.url} into the wheelhouse "
                     f"({got[1]:,} bytes in {time.monotonic() - started:.1f}s)")  # fmt: skip

    def _native_facts_of(self, packed: Path, work: Path, runtime: str, arch: str) -> Path | None:
        """The audit's facts about deps.zip's native files, in a file of their own; also merged into
        this agent's audit cache, so its own audit of the new zip does not parse them twice."""
        if self.native_facts is None:
            return None
        facts = work / "natives.json"
        try:
            audit.audit_zip(packed, runtime=runtime, arch=arch, native_cache=facts)
        except audit.AuditError:
            return None
        if not facts.is_file():  # no native files
            facts.write_text("{}", encoding="utf-8")
        merge_native_facts(facts, self.native_facts)
        return facts

    def publish(self, key: str, packed: Path, wheelhouse: Path, lock: dict, runtime: str, arch: str) -> None:
        """After a build: the lock's files the store lacks, the audit's facts about deps.zip's native
        files, then deps.zip (each object's digest first)."""
        if not self.push:
            return
        started = time.monotonic()
        name = f"deps/{key}.zip"

        def push(store) -> tuple[int, int]:
            wanted = lock_digests(lock)
            present = store.names("wheels/") - self.refused
            uploads = []
            for path in sorted(wheelhouse.iterdir()) if wheelhouse.is_dir() else []:
                digest = file_sha256(path) if path.is_file() and FILE_NAME.fullmatch(path.name) else ""
                if digest in wanted and f"wheels/{digest}/{path.name}" not in present:
                    uploads.append((f"wheels/{digest}/{path.name}", path))
            with tempfile.TemporaryDirectory(prefix="lambda-kit-push-") as tmp:
                facts = self._native_facts_of(packed, Path(tmp), runtime, arch)
                if facts is not None:
                    uploads.append((f"deps/{key}.natives.json", facts))
                uploads.append((name, packed))
                for target, source in uploads:
                    if target.startswith("deps/"):
                        digest_file = Path(tmp) / "digest"
                        digest_file.write_text(file_sha256(source) + "\n", encoding="ascii")
                        store.upload(target + ".sha256", digest_file)
                    store.upload(target, source)
                return len(uploads) - 1 - (facts is not None), sum(p.stat().st_size for _, p in uploads)

        pushed = self._guarded("pushing the build", push)
        if pushed:
            self.say(f"lambda-kit: pushed to cache {self.url} (key {key[:12]}): deps.zip and {pushed[0]} wheelhouse files "
                     f"({pushed[1]:,} bytes in {time.monotonic() - started:.1f}s)")  # fmt: skip


def _is_fact(value: object) -> bool:
    """What audit._inspect_native returns: ["elf", machine, glibc major, minor] or ["other", what]."""
    if not isinstance(value, list) or not value:
        return False
    if value[0] == "elf":
        return len(value) == 4 and isinstance(value[1], (str, int)) and all(type(v) is int for v in value[2:])
    return value[0] == "other" and len(value) == 2 and isinstance(value[1], str)


def merge_native_facts(source: Path, target: Path) -> bool:
    """Add the facts in `source` to the audit's cache file `target` (temporary file, then rename).
    False when `source` is not such a table."""
    try:
        new = auditnative.load_facts(source)  # the audit's own format, its digest checked
    except (OSError, ValueError):
        return False
    try:
        old = auditnative.load_facts(target) if target.is_file() else {}
    except (OSError, ValueError):
        old = {}  # a local cache that does not verify is rebuilt, as the audit would
    if not all(isinstance(k, str) and _is_fact(v) for k, v in new.items()):
        return False
    auditnative.save_facts(target, {**old, **new})
    return True
