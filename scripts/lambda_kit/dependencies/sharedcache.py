"""CACHE_URL: one dependency cache for a fleet of CI agents, in S3 or in a shared folder.

Layout under the URL (a bucket prefix, or a folder on a shared mount):

    deps/<key>.zip              deps.zip of one dependency key (package.dependency_key)
    deps/<key>.zip.sha256       its SHA-256 (hex), written before the zip
    deps/<key>.natives.json     the audit's facts about its native files (+ .sha256), and
    deps/<key>.needed.json      the libraries each one needs (+ .sha256): a fresh agent's audit
                                then parses no ELF file again
    deps/<key>.manifest         signed (CACHE_SIGNING_KEY): the key, the kit version and each
                                object above by name, size and SHA-256 (cachesign.py); written last
    wheels/<sha256>/<file>      a file the lock names, under the lock's own hash of it

On a local miss the kit looks the key up here before building; before a build it fetches the
lock's files it lacks into the wheelhouse (a lock change downloads only what changed); after a
build it pushes what a later build needs. Every object is read with a size bound and verified
against its SHA-256 before use: a bad one is a warning naming it, is ignored, and the build goes
on. With a trusted key set (CACHE_TRUSTED_KEYS, or a signing key), an entry is used only when a
trusted key signed its manifest for this key and every object matches the manifest; the digests
beside the objects are then not read, and an agent without a signing key never pushes. Without
keys, the first line of a run that uses the store says that its entries are unsigned. A wheelhouse
file is checked against the lock in both modes: its hash and the package and version its name
gives. Writes go to a temporary name, then are copied (S3) or renamed (folder) into place, so
concurrent pushes of a key are harmless. An unreachable store is a warning, never a failed build.
A lookup downloads deps.zip, the facts and their digests at once, and hashes each object while
writing it; the verified deps.zip is renamed into the local cache, not copied.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from lambda_kit.common import reporter
from lambda_kit.common.digests import sha256_hex as file_sha256
from lambda_kit.common.errors import CacheUnavailable
from lambda_kit.dependencies import cachefacts, cachesign, lockedfiles
from lambda_kit.dependencies.cachestores import FolderStore, S3Store, open_store
from lambda_kit.lock.lockfile import Lock

MAX_OBJECT_BYTES = 1 << 30  # deps.zip is bounded by Lambda's 250 MB unzipped; a larger object is refused
MAX_DIGEST_BYTES = 100
MAX_FACTS_BYTES = 16 << 20
DIGEST = re.compile(r"[0-9a-f]{64}")


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
        keys: cachesign.Keys | None = None,
    ) -> None:
        self.url, self.push, self.say = url, push, say
        self.native_facts = native_facts  # the audit's cache file (audit_zip's native_cache)
        self._store = store
        self.off = self.announced = False
        self.refused: set[str] = set()  # objects that failed verification here: a push replaces them
        self.keys, self.signer, self.verifier = keys, None, None
        if keys is not None:  # a signing key is loaded now: a bad one stops the run before any build
            self.signer = cachesign.Signer(keys) if keys.signing_pem else None
            own = {self.signer.id: self.signer.public} if self.signer else {}
            self.verifier = cachesign.Verifier({**dict(keys.trusted), **own})

    @classmethod
    def for_build(cls, s, say: Callable[[str], None], native_facts: Path) -> SharedCache | None:
        """The store of a build's settings `s` (CACHE_URL, CACHE_PUSH); None without CACHE_URL.
        `native_facts`: the audit's cache file, which a hit from the store fills too."""
        return cls(s.cache_url, s.cache_push, say, native_facts, keys=s.cache_keys) if s.cache_url else None

    def lookup(self, keys, cache, lock: Lock, cache_dir: Path) -> Path | None:
        """Before a build: deps.zip for the first of `keys` the store has, into the local `cache`
        (a DependencyCache); on a miss, the lock's files the store has into the wheelhouse."""
        cached = self.restore(list(keys), cache.adopt, cache_dir)
        if cached is None:
            self.fetch_wheels(lock, cache_dir / "wheelhouse")
        return cached

    def _guarded(self, doing: str, action: Callable[[FolderStore | S3Store], object]) -> object:
        if self.off:
            return None
        if not self.announced:  # the first line of every use of the store: whom its entries trust
            self.announced = True
            self.say(self._trust_line())
        try:
            if self._store is None:
                self._store = open_store(self.url)
            return action(self._store)
        except CacheUnavailable as exc:
            return self._unavailable(doing, exc)

    def _trust_line(self) -> str:
        if self.verifier is None:
            return reporter.warning(
                f"cache {self.url}: entries are unsigned, so anyone who can write to it "
                "can change what the builds that read it ship (make cache-keygen: CACHE_SIGNING_KEY, "
                "CACHE_TRUSTED_KEYS)"
            )
        role = f"signs what it pushes with key {self.signer.id}" if self.signer and self.push else "only reads"
        return reporter.line(
            f"cache {self.url}: signed entries only (trusted keys {', '.join(self.verifier.trusted)}); "
            f"this agent {role}"
        )

    def _unavailable(self, doing: str, exc: CacheUnavailable) -> None:
        self.off = True
        self.say(reporter.warning(f"cache {self.url} unreachable while {doing} ({exc}); going on without it"))

    def _refuse(self, name: str, why: str, key: str = "") -> bool:
        self.refused.add(name)
        about = f" (key {key[:12]})" if key else ""
        self.say(reporter.warning(f"cache {self.url}: {name}{about} {why}: ignored"))
        return False

    def _verified(
        self, name: str, got: tuple[int, str] | None, expected: str, key: str, limit: int, against: str = "its SHA-256"
    ) -> str | bool | None:
        """`got`: what a download wrote (size, sha256), None for no such object. Its SHA-256 when
        it is `expected` and within `limit`; False (refused, with a warning) when not."""
        if got is None:
            return None
        size, actual = got
        if size > limit:
            return self._refuse(name, f"is larger than {limit:,} bytes", key)
        if actual != expected:
            return self._refuse(
                name, f"does not match {against} ({size:,} bytes, sha256 {actual[:12]}, expected {expected[:12]})", key
            )
        return actual

    def _fetch(self, store, name: str, dest: Path, expected: str) -> str | bool | None:
        """A wheelhouse file into dest, verified against the lock's hash: see _verified."""
        return self._verified(name, store.download(name, dest, MAX_OBJECT_BYTES), expected, "", MAX_OBJECT_BYTES)

    @staticmethod
    def _start_beside(pool: ThreadPoolExecutor, store, name: str, dest: Path, limit: int) -> tuple[Future, Future]:
        """An object and its SHA-256 stored beside it (name + ".sha256"), downloading at once."""
        return (
            pool.submit(store.download, name + ".sha256", dest.with_name(dest.name + ".sha256"), MAX_DIGEST_BYTES),
            pool.submit(store.download, name, dest, min(limit, MAX_OBJECT_BYTES)),
        )

    def _verify_beside(self, name: str, dest: Path, started: tuple[Future, Future], key: str, limit: int):
        """What _start_beside downloaded, checked: see _verified (None: no digest, no object)."""
        digest, found = started
        got = digest.result()
        if got is None:
            return None
        expected = dest.with_name(dest.name + ".sha256").read_bytes().decode("ascii", "replace").strip()
        if got[0] > MAX_DIGEST_BYTES or not DIGEST.fullmatch(expected):
            return self._refuse(name + ".sha256", "is not a SHA-256", key)
        return self._verified(name, found.result(), expected, key, min(limit, MAX_OBJECT_BYTES))

    def _restore_key(self, store, key: str, work: Path) -> str | bool | None:
        """deps.zip of `key` into work, verified (its SHA-256, else None or False), and the audit's
        facts beside it merged into the audit's caches: every object downloads at once."""
        facts = self._facts_files()
        with ThreadPoolExecutor(max_workers=3 + 2 * len(facts)) as pool:
            if self.verifier is not None:
                digest, verify = self._start_signed(pool, store, key, work, facts)
            else:
                packed = self._start_beside(pool, store, f"deps/{key}.zip", work / "deps.zip", MAX_OBJECT_BYTES)
                started = {
                    part: self._start_beside(pool, store, f"deps/{key}.{part}", work / part, MAX_FACTS_BYTES)
                    for part in facts
                }
                digest = self._verify_beside(f"deps/{key}.zip", work / "deps.zip", packed, key, MAX_OBJECT_BYTES)

                def verify(part: str) -> str | bool | None:
                    return self._verify_beside(f"deps/{key}.{part}", work / part, started[part], key, MAX_FACTS_BYTES)

            for part, (cache, shape) in facts.items() if digest else ():
                name = f"deps/{key}.{part}"
                try:
                    if not verify(part):
                        continue
                except CacheUnavailable as exc:  # the zip is good: the audit finds its facts itself
                    self._unavailable("fetching the audit's facts", exc)
                    break
                if not cachefacts.merge_native_facts(work / part, cache, shape):
                    self._refuse(name, "is not a table of the audit's facts", key)
        return digest

    def _start_signed(self, pool: ThreadPoolExecutor, store, key: str, work: Path, facts: dict):
        """The signed entry of `key`: its manifest, deps.zip and the audit's facts download at once;
        deps.zip is checked against the manifest once a trusted key's signature on it is (its
        SHA-256, else None or False). Also returns the check of one facts object (by suffix)."""
        name = f"deps/{key}.zip"
        pool.submit(cachesign.preload)
        envelope = pool.submit(store.download, f"deps/{key}.manifest", work / "manifest", cachesign.MAX_ENVELOPE)
        packed = pool.submit(store.download, name, work / "deps.zip", MAX_OBJECT_BYTES)
        started = {
            part: pool.submit(store.download, f"deps/{key}.{part}", work / part, MAX_FACTS_BYTES) for part in facts
        }
        signed: dict[str, tuple[int, str]] = {}
        signer = ""

        def matches(object_name: str, got: Future, limit: int) -> str | bool | None:
            if object_name not in signed:  # not signed: never used
                return None
            expected = signed[object_name][1]
            if got.result() is None:
                return self._refuse(
                    object_name, f"is missing, though its manifest signed by key {signer} lists it", key
                )
            return self._verified(
                object_name, got.result(), expected, key, limit, f"its manifest signed by key {signer}"
            )

        def facts_check(part: str) -> str | bool | None:
            return matches(f"deps/{key}.{part}", started[part], MAX_FACTS_BYTES)

        got = envelope.result()
        if got is None:
            unsigned = packed.result() is not None
            return (
                self._refuse(name, "is not signed (trusted keys are set: nothing unsigned is used)", key)
                if unsigned
                else None
            ), facts_check
        try:
            if got[0] > cachesign.MAX_ENVELOPE:
                raise cachesign.Rejected(f"has a manifest larger than {cachesign.MAX_ENVELOPE:,} bytes")
            signer, objects = self.verifier.check((work / "manifest").read_bytes(), key)
        except cachesign.Rejected as exc:
            return self._refuse(name, str(exc), key), facts_check
        signed.update(objects)
        if name not in signed:
            return self._refuse(name, f"is not in its manifest signed by key {signer}", key), facts_check
        return matches(name, packed, MAX_OBJECT_BYTES), facts_check

    def restore(self, keys: list[str], put: Callable[[str, Path, str], Path], scratch: Path) -> Path | None:
        """deps.zip for the first of `keys` the store has, verified, handed to `put(key, path,
        sha256)` (the local cache takes it). `scratch`: a folder on the same disk for the download."""
        started = time.monotonic()
        for key in keys:
            with tempfile.TemporaryDirectory(prefix="shared-", dir=scratch) as tmp:
                work = Path(tmp)
                digest = self._guarded(
                    "looking up the dependencies", lambda store, key=key, work=work: self._restore_key(store, key, work)
                )
                if digest:
                    size = (work / "deps.zip").stat().st_size
                    packed = put(key, work / "deps.zip", digest)
                    self.say(
                        reporter.line(
                            f"dependencies from cache {self.url} (key {key[:12]}), no build needed "
                            f"({size:,} bytes in {time.monotonic() - started:.1f}s)"
                        )
                    )
                    return packed
        if not self.off and not self.refused:  # a refusal has said why already
            self.say(
                reporter.line(
                    f"dependencies not in cache {self.url} (key {' or '.join(k[:12] for k in keys)}): building them"
                )
            )
        return None

    def fetch_wheels(self, lock: Lock, wheelhouse: Path) -> None:
        """Before a build: the lock's files the wheelhouse lacks, from the store, each verified
        against the lock's hash of it."""
        started = time.monotonic()
        files = lock.file_digests()
        wanted = set(files)
        if wheelhouse.is_dir():
            wanted -= {file_sha256(p) for p in wheelhouse.iterdir() if p.is_file()}

        def fetch(store) -> tuple[int, int]:
            count = total = 0
            chosen = lockedfiles.stored_files(store.names("wheels/"), files, wanted, self._refuse)
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
            self.say(
                reporter.line(
                    f"{got[0]} of the lock's files from cache {self.url} into the wheelhouse "
                    f"({got[1]:,} bytes in {time.monotonic() - started:.1f}s)"
                )
            )

    def _facts_files(self) -> dict[str, tuple[Path, Callable[[str, object], bool]]]:
        """The audit's facts a deps.zip travels with, by object suffix: the audit's local cache
        file each goes into, and the shape of one of its entries."""
        from lambda_kit.audit.nativeneeds import (
            NEEDED_FACTS,
        )  # here: it loads the ELF reader, which only the audit needs

        if self.native_facts is None:
            return {}
        return {
            "natives.json": (self.native_facts, cachefacts.is_native_entry),
            "needed.json": (self.native_facts.with_name(NEEDED_FACTS), cachefacts.is_links_entry),
        }

    def _facts_of(self, packed: Path, work: Path, runtime: str, arch: str) -> list[tuple[str, Path]]:
        """The audit's facts about deps.zip's native files (what each is, the libraries it needs),
        each kind in a file of its own; also merged into this agent's audit caches, so its own audit
        of the new zip does not parse them twice."""
        from lambda_kit.audit import audit, auditnative  # here: a build that shares nothing never loads the audit early

        files = self._facts_files()
        if not files:
            return []
        try:
            audit.audit_zip(packed, runtime=runtime, arch=arch, native_cache=work / self.native_facts.name)
        except audit.AuditError:
            return []
        found = []
        for part, (cache, shape) in files.items():
            if not (work / cache.name).is_file():  # no native files
                auditnative.save_facts(work / cache.name, {})
            cachefacts.merge_native_facts(work / cache.name, cache, shape)
            found.append((part, work / cache.name))
        return found

    def publish(self, key: str, packed: Path, wheelhouse: Path, lock: Lock, runtime: str, arch: str) -> None:
        """After a build: the lock's files the store lacks, the audit's facts about deps.zip's native
        files, then deps.zip (each object's digest first)."""
        if not self.push:
            return
        started = time.monotonic()
        name = f"deps/{key}.zip"

        def push(store) -> tuple[int, int]:
            wanted = set(lock.file_digests())
            present = store.names("wheels/") - self.refused
            uploads = []
            for path in sorted(wheelhouse.iterdir()) if wheelhouse.is_dir() else []:
                digest = file_sha256(path) if path.is_file() and lockedfiles.FILE_NAME.fullmatch(path.name) else ""
                if digest in wanted and f"wheels/{digest}/{path.name}" not in present:
                    uploads.append((f"wheels/{digest}/{path.name}", path))
            with tempfile.TemporaryDirectory(prefix="lambda-kit-push-") as tmp:
                facts = self._facts_of(packed, Path(tmp), runtime, arch)
                uploads += [(f"deps/{key}.{part}", path) for part, path in facts]
                uploads.append((name, packed))
                entry = {}
                for target, source in uploads:
                    if target.startswith("deps/"):
                        entry[target] = (source.stat().st_size, file_sha256(source))
                        digest_file = Path(tmp) / "digest"
                        digest_file.write_text(entry[target][1] + "\n", encoding="ascii")
                        store.upload(target + ".sha256", digest_file)
                    store.upload(target, source)
                if self.signer is not None:  # last: a reader sees a manifest only once its objects are there
                    envelope = Path(tmp) / "manifest"
                    envelope.write_bytes(self.signer.envelope(key, entry))
                    store.upload(f"deps/{key}.manifest", envelope)
                return len(uploads) - 1 - len(facts), sum(p.stat().st_size for _, p in uploads)

        pushed = self._guarded("pushing the build", push)
        if pushed:
            signed = f", signed with key {self.signer.id}" if self.signer else ""
            self.say(
                reporter.line(
                    f"pushed to cache {self.url} (key {key[:12]}{signed}): deps.zip and {pushed[0]} "
                    f"wheelhouse files ({pushed[1]:,} bytes in {time.monotonic() - started:.1f}s)"
                )
            )
