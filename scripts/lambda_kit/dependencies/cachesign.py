"""Signed CACHE_URL entries: the keys, an entry's manifest, its signature and the reader's check.

A writer (CACHE_SIGNING_KEY) signs each entry's manifest: the dependency key, the kit version and
every object the entry is made of (name, size, SHA-256). Readers trust the public keys listed in
CACHE_TRUSTED_KEYS (a writer also its own): once any key is set, an entry is used only when its
manifest carries a valid signature by one of them, names the key asked for, and every object used
matches it. The signature is Ed25519 from `cryptography` (scripts/sign-requirements.txt, installed
with LAMBDA_KIT_EXTRAS=sign), imported only when a key is used; reading the settings, the key
formats and the manifest need the standard library only.

    private key  PEM, PKCS#8, unencrypted (`make cache-keygen`, or `openssl genpkey -algorithm ed25519`).
                 CACHE_SIGNING_KEY names its file, or holds the PEM text itself when it is exported in
                 the environment (never on make's command line, which every process list shows).
    public key   one line, `lambda-kit-ed25519:<base64 of the 32-byte key>` (what KEY.pub holds).
                 CACHE_TRUSTED_KEYS lists such keys, or files holding them, space-separated.
    key id       the first 16 hex digits of the public key's SHA-256: what the kit's lines name.
    envelope     deps/<key>.manifest: {"manifest": "<canonical JSON>", "key": "<key id>",
                 "signature": "<base64 of 64 bytes>"}

A key never reaches a log line, an error or a child process: errors name the file or the setting,
and the helper takes CACHE_SIGNING_KEY out of its environment when it reads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from lambda_kit import __version__
from lambda_kit.common import reporter
from lambda_kit.common.errors import UsageError

FORMAT = "lambda-kit cache entry 1"
PUBLIC = re.compile(r"lambda-kit-ed25519:([A-Za-z0-9+/]{43}=)")
PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
ED25519_OID = bytes.fromhex("06032b6570")  # 1.3.101.112, in the key's DER
MAX_KEY_FILE = 64 << 10
MAX_ENVELOPE = 1 << 20
SIGNING_HINT = "make cache-keygen KEY=path writes a key pair: CACHE_SIGNING_KEY=path, CACHE_TRUSTED_KEYS=path.pub"


class Rejected(Exception):
    """An entry the reader will not use: the words of its warning."""


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def public_line(public: bytes) -> str:
    return "lambda-kit-ed25519:" + base64.b64encode(public).decode()


@dataclass(frozen=True)
class Keys:
    """CACHE_SIGNING_KEY and CACHE_TRUSTED_KEYS as read (the private key is not printed by repr)."""

    signing_pem: str = field(default="", repr=False)
    signing_from: str = ""  # the key's file, or "the environment"
    trusted: tuple[tuple[str, bytes], ...] = ()  # (key id, raw public key)

    @property
    def reads_only(self) -> bool:
        """Trusted keys and no key to sign with: such an agent never pushes."""
        return not self.signing_pem


def _read_key_file(path: Path, setting: str) -> str:
    try:
        # O_NONBLOCK: a FIFO in place of the key file must not hang the build.
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UsageError(f"{setting} names no regular file", str(path), hint=SIGNING_HINT)
            data = f.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise UsageError(f"{setting} names no such file", str(path), hint=SIGNING_HINT) from None
    except OSError as exc:
        raise UsageError(f"cannot read the file {setting} names ({exc.strerror})", str(path)) from None
    if len(data) > MAX_KEY_FILE:
        raise UsageError(f"{setting} names a file too large for a key", str(path), hint=SIGNING_HINT)
    return data.decode("ascii", "replace")


def _signing_pem(text: str, where: str) -> str:
    """The PEM of an unencrypted PKCS#8 Ed25519 private key, or a UsageError naming `where` (never the key)."""
    found = PEM.search(text)
    kind = found.group(1) if found else ""
    if kind == "ENCRYPTED PRIVATE KEY":
        raise UsageError("CACHE_SIGNING_KEY is encrypted with a passphrase", where, hint=SIGNING_HINT)
    try:
        der = base64.b64decode("".join(found.group(2).split()), validate=True) if kind == "PRIVATE KEY" else b""
    except (binascii.Error, ValueError):
        der = b""
    if ED25519_OID not in der[:16]:
        raise UsageError("CACHE_SIGNING_KEY is not an Ed25519 private key in PEM (PKCS#8)", where, hint=SIGNING_HINT)
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN PRIVATE KEY-----", *lines, "-----END PRIVATE KEY-----", ""])


def _trusted(value: str) -> tuple[tuple[str, bytes], ...]:
    found: dict[str, bytes] = {}
    for item in value.split():
        if item.startswith("lambda-kit-ed25519:"):
            lines = [item]
        else:  # a file: one key a line, # comments
            text = _read_key_file(Path(item).expanduser(), "CACHE_TRUSTED_KEYS")
            lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        for line in lines or [""]:
            match = PUBLIC.fullmatch(line)
            raw = base64.b64decode(match.group(1)) if match else b""
            if len(raw) != 32:
                raise UsageError(
                    "CACHE_TRUSTED_KEYS holds something that is not a lambda-kit public key",
                    item if line == item else f"in {item}",
                    hint="each is lambda-kit-ed25519:<base64>, or a file holding such lines (make cache-keygen writes "
                    "KEY.pub)",
                )
            found[key_id(raw)] = raw
    return tuple(sorted(found.items()))


def from_environment(environ, wanted: bool = True) -> Keys | None:
    """The keys the settings name, checked without `cryptography` (every build reads them; only a
    cache miss needs the library). CACHE_SIGNING_KEY leaves the environment here: no tool the kit
    runs inherits it. None when neither is set, or when not `wanted` (no CACHE_URL)."""
    signing = environ.pop("CACHE_SIGNING_KEY", "").strip()
    origin = environ.get("LAMBDA_KIT_SIGNING_KEY_ORIGIN", "")
    trusted = environ.get("CACHE_TRUSTED_KEYS", "").strip()
    if not wanted or not (signing or trusted):
        return None
    pem, where = "", ""
    if "-----BEGIN" in signing:
        if origin == "command line":
            raise UsageError(
                "CACHE_SIGNING_KEY holds a key on make's command line, where every process list shows it",
                "the key itself is not printed",
                hint="export CACHE_SIGNING_KEY in the environment (in Jenkins: withCredentials), or make it name the "
                "key's file",
            )
        pem, where = _signing_pem(signing, "CACHE_SIGNING_KEY from the environment"), "the environment"
    elif signing:
        path = Path(signing).expanduser().absolute()
        pem, where = _signing_pem(_read_key_file(path, "CACHE_SIGNING_KEY"), str(path)), str(path)
    return Keys(pem, where, _trusted(trusted))


class Signer:
    """The writer's key, loaded with `cryptography`: signs manifests."""

    def __init__(self, keys: Keys) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            key = serialization.load_pem_private_key(keys.signing_pem.encode(), password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise UsageError(
                "CACHE_SIGNING_KEY is not a valid Ed25519 private key", keys.signing_from, hint=SIGNING_HINT
            )
        self._key = key
        self.public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.id = key_id(self.public)

    def envelope(self, key: str, objects: dict[str, tuple[int, str]]) -> bytes:
        """The signed manifest of an entry: `objects` by name, (size, sha256 hex)."""
        text = json.dumps(
            {
                "format": FORMAT,
                "key": key,
                "kit": __version__,
                "objects": {name: {"sha256": digest, "size": size} for name, (size, digest) in objects.items()},
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        signature = base64.b64encode(self._key.sign(text.encode())).decode()
        return json.dumps({"manifest": text, "key": self.id, "signature": signature}, indent=1).encode() + b"\n"


def preload() -> None:
    """Import what a check needs (about 20 ms), in a thread while the entry downloads."""
    from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: F401


class Verifier:
    """The reader's trusted keys: an entry's envelope checked, its objects returned."""

    def __init__(self, trusted: dict[str, bytes]) -> None:
        self.trusted = trusted

    def check(self, data: bytes, key: str) -> tuple[str, dict[str, tuple[int, str]]]:
        """The signer's key id and the manifest's objects, by name: (size, sha256). Rejected (a
        warning's words) unless a trusted key signed a manifest of this kit for this `key`."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            envelope = json.loads(data)
            text, signer, signature = envelope["manifest"], envelope["key"], envelope["signature"]
            if not all(isinstance(v, str) for v in (text, signer, signature)):
                raise ValueError
        except (ValueError, KeyError, TypeError, RecursionError):
            raise Rejected("has a manifest that is not a lambda-kit signature envelope") from None
        shown = re.sub(r"[^0-9a-f]", "?", signer[:16])
        if signer not in self.trusted:
            raise Rejected(f"is signed by key {shown}, which is not a trusted key (CACHE_TRUSTED_KEYS)")
        try:
            raw = base64.b64decode(signature, validate=True)
            Ed25519PublicKey.from_public_bytes(self.trusted[signer]).verify(raw, text.encode())
        except (binascii.Error, ValueError, InvalidSignature):
            raise Rejected(f"has a signature by key {shown} that does not verify") from None
        try:  # signed by a trusted key: a kit's own JSON, still read with care
            manifest = json.loads(text)
            objects = {str(n): (int(o["size"]), str(o["sha256"])) for n, o in manifest["objects"].items()}
            ours = manifest.get("format") == FORMAT
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            ours = False
        if not ours:
            raise Rejected(f"has a manifest signed by key {shown} in a format this kit does not read")
        if manifest.get("key") != key:
            other = re.sub(r"[^0-9a-f]", "?", str(manifest.get("key"))[:12])
            raise Rejected(f"has a manifest signed by key {shown} for another dependency key ({other})")
        if manifest.get("kit") != __version__:
            raise Rejected(f"has a manifest signed by key {shown} for another kit version")
        return shown, objects


def keygen(path: Path, say) -> None:
    """`make cache-keygen KEY=path`: a new Ed25519 key pair, the private key at `path` (mode 0600),
    the public key at `path.pub`; an existing file is never overwritten."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not str(path) or path.name in ("", ".", ".."):
        raise UsageError("no key file to write", hint="make cache-keygen KEY=path/to/cache.key")
    path = path.expanduser().absolute()
    public_path = path.with_name(path.name + ".pub")
    if not path.parent.is_dir():
        raise UsageError("no such folder for the key", str(path.parent), hint="create it first, or choose another KEY")
    for target in (path, public_path):
        if os.path.lexists(target):
            raise UsageError("refusing to overwrite a file", str(target), hint="choose another KEY, or remove it first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    written = []
    try:
        for target, data, mode in ((path, pem, 0o600), (public_path, public_line(public).encode() + b"\n", 0o644)):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # never an existing file
            written.append(target)
            with open(fd, "wb") as f:
                os.fchmod(f.fileno(), mode)
                f.write(data)
    except OSError as exc:
        for target in written:
            target.unlink(missing_ok=True)
        raise UsageError(f"cannot write the key ({exc.strerror})", str(exc.filename or path)) from None
    say(
        reporter.line(
            f"wrote the private key {path} (mode 0600) and the public key {public_path} (key id {key_id(public)})"
        )
    )
    say(f"  public key       {public_line(public)}")
    say(f"  writers          CACHE_SIGNING_KEY={path} (a CI secret: main-branch builds only, never in git)")
    say(f"  every agent      CACHE_TRUSTED_KEYS={public_path} (or the public key itself)")
