"""Signed CACHE_URL entries, the parts: key files and settings, the signature envelope and the
reader's check (cryptography's Ed25519, as the kit's environment installs it). The whole flow on a
folder store and on S3 is in integration/network/test_sharedcache_network.py."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from helpers import new_key
from lambda_kit import __version__
from lambda_kit.common.errors import UsageError
from lambda_kit.dependencies import cachesign

KEY = "a" * 64
OBJECTS = {f"deps/{KEY}.zip": (1234, "b" * 64), f"deps/{KEY}.natives.json": (10, "c" * 64)}


def keys(signing: str = "", trusted: str = "", **env: str) -> cachesign.Keys:
    return cachesign.from_environment({"CACHE_SIGNING_KEY": signing, "CACHE_TRUSTED_KEYS": trusted, **env})


def verifier(*public_lines: str) -> cachesign.Verifier:
    return cachesign.Verifier(dict(keys(trusted=" ".join(public_lines)).trusted))


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, capsys):
    said = []
    cachesign.keygen(tmp_path / "cache.key", said.append)
    private, public = tmp_path / "cache.key", tmp_path / "cache.key.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    pem = private.read_bytes()
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    raw = loaded.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public.read_text() == f"lambda-kit-ed25519:{base64.b64encode(raw).decode()}\n"
    assert f"(key id {cachesign.key_id(raw)})" in said[0]
    body = b"".join(pem.splitlines()[1:-1]).decode()
    assert all(body not in line for line in said)  # the private key is never printed

    before = (private.read_bytes(), public.read_bytes())
    for existing in (private, public):
        others = [p for p in (private, public) if p != existing]
        for other in others:
            other.rename(other.with_name(other.name + ".aside"))
        with pytest.raises(UsageError) as refused:
            cachesign.keygen(private, said.append)
        assert str(refused.value) == f"refusing to overwrite a file ({existing})"
        for other in others:
            other.with_name(other.name + ".aside").rename(other)
    assert (private.read_bytes(), public.read_bytes()) == before
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.key")  # a symlink is never followed to write
    with pytest.raises(UsageError):
        cachesign.keygen(tmp_path / "dangling.key", said.append)
    assert not (tmp_path / "nowhere").exists()


def test_the_signing_key_is_a_file_or_the_pem_itself_from_the_environment_and_leaves_the_environment(tmp_path):
    private, _, public = new_key(tmp_path)
    pem = Path(private).read_text()
    from_file = keys(private)
    environ = {"CACHE_SIGNING_KEY": pem, "LAMBDA_KIT_SIGNING_KEY_ORIGIN": "environment"}
    from_env = cachesign.from_environment(environ)
    assert "CACHE_SIGNING_KEY" not in environ  # no tool the kit runs inherits it
    one_line = keys(" ".join(pem.split("\n")))  # a CI secret field that keeps no line breaks
    signers = [cachesign.Signer(k) for k in (from_file, from_env, one_line)]
    assert {s.id for s in signers} == {cachesign.key_id(base64.b64decode(public.split(":", 1)[1]))}
    assert from_file.signing_from == private and from_env.signing_from == "the environment"
    assert pem not in repr(from_env) and from_env.reads_only is False
    assert cachesign.from_environment({"CACHE_SIGNING_KEY": pem}, wanted=False) is None  # no CACHE_URL


def test_bad_key_settings_are_one_line_that_never_shows_the_key(tmp_path):
    private, public_file, public = new_key(tmp_path)
    pem = Path(private).read_text()
    body = "".join(pem.splitlines()[1:-1])
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.key").write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "locked.key").write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    (tmp_path / "bad.pub").write_text("# the main-branch key\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHX\n")
    os.mkfifo(tmp_path / "fifo.key")
    cases = [
        (
            dict(signing=pem, LAMBDA_KIT_SIGNING_KEY_ORIGIN="command line"),
            "CACHE_SIGNING_KEY holds a key on make's command line, where every process list shows it",
        ),
        (dict(signing=str(tmp_path / "missing.key")), "CACHE_SIGNING_KEY names no such file"),
        (dict(signing=str(tmp_path / "fifo.key")), "CACHE_SIGNING_KEY names no regular file"),
        (dict(signing=str(tmp_path / "rsa.key")), "CACHE_SIGNING_KEY is not an Ed25519 private key in PEM (PKCS#8)"),
        (dict(signing=str(tmp_path / "locked.key")), "CACHE_SIGNING_KEY is encrypted with a passphrase"),
        (dict(signing=public_file), "CACHE_SIGNING_KEY is not an Ed25519 private key in PEM (PKCS#8)"),
        (dict(trusted=f"{public} {tmp_path / 'bad.pub'}"), "CACHE_TRUSTED_KEYS holds something that is not"),
        (dict(trusted=public[:-2] + "=="), "CACHE_TRUSTED_KEYS holds something that is not"),
        (dict(trusted=private), "CACHE_TRUSTED_KEYS holds something that is not"),
    ]
    for settings, message in cases:
        with pytest.raises(UsageError) as caught:
            keys(**settings)
        text = "\n".join(caught.value.lines())
        assert str(caught.value).startswith(message), (settings, text)
        assert body not in text and body[:40] not in text


def test_public_keys_inline_or_in_files_with_comments(tmp_path):
    _, first_file, first = new_key(tmp_path, "main.key")
    _, _, second = new_key(tmp_path, "release.key")
    both = tmp_path / "fleet.pub"
    both.write_text(f"# main-branch agents\n{first}\n\n# release agents\n{second}\n")
    ids = {cachesign.key_id(base64.b64decode(line.split(":", 1)[1])) for line in (first, second)}
    assert {i for i, _ in keys(trusted=f"{both}").trusted} == ids
    assert {i for i, _ in keys(trusted=f"{first_file}   {second}").trusted} == ids
    assert keys(trusted=first).reads_only  # trusted keys, no signing key: this agent only reads


def test_a_signed_manifest_is_used_only_from_a_trusted_key_for_this_key_and_this_kit(tmp_path):
    trusted_key, _, trusted_public = new_key(tmp_path, "trusted.key")
    other_key, _, _ = new_key(tmp_path, "other.key")
    signer, stranger = cachesign.Signer(keys(trusted_key)), cachesign.Signer(keys(other_key))
    check = verifier(trusted_public)
    good = signer.envelope(KEY, OBJECTS)
    assert check.check(good, KEY) == (signer.id, OBJECTS)

    def rejected(data: bytes, key: str = KEY) -> str:
        with pytest.raises(cachesign.Rejected) as caught:
            check.check(data, key)
        return str(caught.value)

    assert rejected(stranger.envelope(KEY, OBJECTS)) == (
        f"is signed by key {stranger.id}, which is not a trusted key (CACHE_TRUSTED_KEYS)"
    )
    envelope = json.loads(good)
    for signature in (envelope["signature"][:-8], envelope["signature"][:40], "", "not base64!"):
        assert rejected(json.dumps({**envelope, "signature": signature}).encode()) == (
            f"has a signature by key {signer.id} that does not verify"
        )
    swapped = envelope["manifest"].replace("b" * 64, "d" * 64)  # an object's digest changed after signing
    assert rejected(json.dumps({**envelope, "manifest": swapped}).encode()).endswith("that does not verify")
    assert (
        rejected(good, "e" * 64) == f"has a manifest signed by key {signer.id} for another dependency key ({KEY[:12]})"
    )
    for junk in (b"", b"not json", b"[]", b'{"manifest": 1, "key": "x", "signature": "y"}', b"[" * 100_000):
        assert rejected(junk) == "has a manifest that is not a lambda-kit signature envelope"
    forged_id = json.dumps({**envelope, "key": "\x1b[31m" + "f" * 20}).encode()  # terminal escapes never reach a line
    assert rejected(forged_id) == "is signed by key ??31?fffffffffff, which is not a trusted key (CACHE_TRUSTED_KEYS)"

    text = json.loads(envelope["manifest"])
    assert text == {
        "format": cachesign.FORMAT,
        "key": KEY,
        "kit": __version__,
        "objects": {n: {"size": s, "sha256": d} for n, (s, d) in OBJECTS.items()},
    }
    older = dict(text, kit="0.0.1")
    resigned = json.dumps(older, sort_keys=True, separators=(",", ":"))
    signature = base64.b64encode(signer._key.sign(resigned.encode())).decode()
    assert rejected(json.dumps({"manifest": resigned, "key": signer.id, "signature": signature}).encode()) == (
        f"has a manifest signed by key {signer.id} for another kit version"
    )
