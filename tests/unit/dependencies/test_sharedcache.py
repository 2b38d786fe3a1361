"""CACHE_URL, the parts: the dependency key shared by checkouts in other folders, wheelhouse files
and audit facts from the store verified and shape-checked, a planted FIFO, and a signed entry's
round trip in process. Agents sharing a real store: integration/network/test_sharedcache_network.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from helpers import BASE_IMAGE, RUNTIME, Fleet, copy_sample, unsigned_warning
from lambda_kit.audit import auditnative
from lambda_kit.dependencies import cachefacts, cachesign, sharedcache
from lambda_kit.dependencies.key import dependency_key
from lambda_kit.lock.lockfile import Lock
from lambda_kit.plan.buildplan import PackageSettings, resolve


def test_key_is_shared_by_checkouts_in_other_folders_and_changes_with_what_changes_the_bytes(tmp_path):
    a = copy_sample(tmp_path / "agent-a" / "workspace" / "repo")
    b = copy_sample(tmp_path / "ci" / "job-42" / "another-name")

    def key(project: Path, builder: str = "docker", **changes) -> str:
        settings = dict(runtime=RUNTIME, arch="x86_64", base_image=BASE_IMAGE, slim=False)
        s = PackageSettings(
            kit_dir=project,
            pipfile=project / "Pipfile",
            src=project / "lambdas",
            out=project / "build.zip",
            state_dir=project / ".lambda-kit",
            **{**settings, **changes},
        )
        return dependency_key(resolve(s), builder)

    assert key(a) == key(b)
    changed = [
        key(a, runtime="3.12"),
        key(a, arch="arm64"),
        key(a, slim=True),
        key(a, base_image="other/base:2"),
        key(a, builder="local"),
    ]
    assert len({key(a), *changed}) == 6


def test_wheelhouse_files_from_the_store_are_verified_and_bounded(tmp_path, monkeypatch):
    store, wheelhouse = tmp_path / "store", tmp_path / "wheelhouse"
    files = {
        "good-1.0-py3-none-any.whl": b"good" * 10,
        "tampered-1.0-py3-none-any.whl": b"real" * 10,
        "huge-1.0-py3-none-any.whl": b"h" * 300,
    }
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    lock = Lock({"default": {n.split("-")[0]: {"version": "==1.0", "hashes": [f"sha256:{digests[n]}"]} for n in files}})
    for name, data in files.items():
        path = store / "wheels" / digests[name] / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b"evil" * 10 if name.startswith("tampered") else data)
    # The lock's bytes under a name the lock gives another package, or another version: the
    # installer would take them for what the name says.
    for renamed in ("huge-1.0-py3-none-any.whl", "good-2.0-py3-none-any.whl"):
        (store / "wheels" / digests["good-1.0-py3-none-any.whl"] / renamed).write_bytes(
            files["good-1.0-py3-none-any.whl"]
        )
    monkeypatch.setattr(sharedcache, "MAX_OBJECT_BYTES", 100)
    said = []
    sharedcache.SharedCache(str(store), True, said.append).fetch_wheels(lock, wheelhouse)
    assert sorted(p.name for p in wheelhouse.iterdir()) == ["good-1.0-py3-none-any.whl"]
    assert (wheelhouse / "good-1.0-py3-none-any.whl").read_bytes() == files["good-1.0-py3-none-any.whl"]
    assert said[0] == unsigned_warning(str(store))
    refused = [line for line in said[1:] if line.startswith("lambda-kit: warning:")]
    assert len(refused) == 4
    assert sorted(line.split("/")[-1].split()[0] for line in refused[:2]) == [
        "good-2.0-py3-none-any.whl",
        "huge-1.0-py3-none-any.whl",
    ]
    assert all("has a file name for another package or version than the lock's for its hash" in r for r in refused[:2])
    tampered = (
        f"wheels/{digests['tampered-1.0-py3-none-any.whl']}/tampered-1.0-py3-none-any.whl does not match its SHA-256"
    )
    assert any(tampered in line for line in refused)
    assert any("huge-1.0" in line and "larger than 100 bytes" in line for line in refused)


def test_a_fifo_planted_in_the_folder_store_is_one_warning_not_a_hang(tmp_path):
    store = tmp_path / "store"
    (store / "deps").mkdir(parents=True)
    os.mkfifo(store / "deps" / f"{'a' * 64}.zip.sha256")
    (tmp_path / "work").mkdir()
    said = []
    cache = sharedcache.SharedCache(str(store), True, said.append)
    assert cache.restore(["a" * 64], lambda key, path, digest: path, tmp_path / "work") is None
    assert len(said) == 2 and said[0] == unsigned_warning(str(store))
    assert said[1].startswith(
        f"lambda-kit: warning: cache {store} unreachable while looking up the dependencies (not a regular file"
    )


def test_audit_facts_from_the_store_are_merged_only_when_they_are_facts(tmp_path):
    target = tmp_path / "audit-native.json"
    auditnative.save_facts(target, {"a.so|00000001|10": ["elf", "x86_64", 2, 17]})
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    auditnative.save_facts(
        good, {"b.so|00000002|20": ["other", "Mach-O"], "c.so|00000003|30": ["elf", "x86_64", 2, 28]}
    )
    for entries in ({"b.so|1|2": []}, {"b.so|1|2": ["elf", "x86_64", "2", 17]}, {"b.so": ["other"]}):
        auditnative.save_facts(bad, entries)  # verified, but not facts
        assert not cachefacts.merge_native_facts(bad, target)
    for text in ('["elf"]', "not json", '{"b.so|1|2": ["other", "x"]}'):  # not a verified facts file at all
        bad.write_text(text)
        assert not cachefacts.merge_native_facts(bad, target)
    assert cachefacts.merge_native_facts(good, target)
    merged = auditnative.load_facts(target)
    assert merged == {
        "a.so|00000001|10": ["elf", "x86_64", 2, 17],
        "b.so|00000002|20": ["other", "Mach-O"],
        "c.so|00000003|30": ["elf", "x86_64", 2, 28],
    }


def test_bytecode_verdicts_and_needed_libraries_from_the_store_are_merged_only_in_their_shape(tmp_path):
    """COMPILE=1 puts bytecode verdicts beside the native facts; the native-needed rule keeps its own
    cache of each file's ELF links. Both travel with deps.zip and are shape-checked before use."""
    natives, needed, source = tmp_path / "audit-native.json", tmp_path / "audit-needed.json", tmp_path / "in.json"
    verdicts = {
        "bytecode|3.12|a.pyc|00000001|00000002": [],
        "bytecode|3.12|b.pyc|00000003|ffffffff": ["bytecode-orphan", "bytecode without its source"],
    }
    auditnative.save_facts(source, verdicts)
    assert cachefacts.merge_native_facts(source, natives)
    assert auditnative.load_facts(natives) == verdicts
    auditnative.save_facts(source, {"bytecode|3.12|c.pyc|1|2": ["bytecode-stale"]})
    assert not cachefacts.merge_native_facts(source, natives)

    links = {"a.so|00000001|10": [[["libc.so.6", "libm.so.6"], [], ["$ORIGIN/../lib"]]], "b.so|00000002|20": [None]}
    auditnative.save_facts(source, links)
    assert not cachefacts.merge_native_facts(source, natives)  # not native facts
    assert cachefacts.merge_native_facts(source, needed, cachefacts.is_links_entry)
    assert auditnative.load_facts(needed) == links
    for entry in ([], [None, None], [[["libc.so.6"], []]], [[["libc.so.6"], [], [1]]], ["elf", "x86_64", 2, 17]):
        auditnative.save_facts(source, {"c.so|00000003|30": entry})
        assert not cachefacts.merge_native_facts(source, needed, cachefacts.is_links_entry)
    assert auditnative.load_facts(needed) == links


# ---- signed entries: CACHE_SIGNING_KEY writes, CACHE_TRUSTED_KEYS reads ----


def test_a_signed_entry_round_trips_in_process_and_a_manifest_past_its_bound_is_refused(tmp_path, monkeypatch):
    store, work, key = tmp_path / "store", tmp_path / "work", "f" * 64
    store.mkdir()
    work.mkdir()
    writer = Fleet(tmp_path / "keys")
    packed = tmp_path / "deps.zip"
    packed.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    signing = cachesign.from_environment({"CACHE_SIGNING_KEY": writer.private})
    pushed: list[str] = []
    cache = sharedcache.SharedCache(str(store), True, pushed.append, keys=signing)
    cache.publish(key, packed, tmp_path / "no-wheelhouse", Lock(), RUNTIME, "x86_64")
    assert sorted(p.name for p in (store / "deps").iterdir()) == [f"{key}.manifest", f"{key}.zip", f"{key}.zip.sha256"]
    trusted = cachesign.from_environment({"CACHE_TRUSTED_KEYS": writer.public})

    def restore() -> tuple[bytes | None, list[str]]:
        said: list[str] = []
        reader = sharedcache.SharedCache(str(store), False, said.append, keys=trusted)
        return reader.restore([key], lambda k, path, digest: path.read_bytes(), work), said

    got, said = restore()
    assert got == packed.read_bytes() and len(said) == 2
    assert (
        said[0]
        == f"lambda-kit: cache {store}: signed entries only (trusted keys {writer.signer.id}); this agent only reads"
    )
    assert said[1].startswith(f"lambda-kit: dependencies from cache {store} (key {key[:12]}), no build needed")
    monkeypatch.setattr(cachesign, "MAX_ENVELOPE", 100)
    got, said = restore()
    assert got is None and said[1] == (
        f"lambda-kit: warning: cache {store}: deps/{key}.zip (key {key[:12]}) "
        "has a manifest larger than 100 bytes: ignored"
    )
    assert list(work.iterdir()) == []  # nothing of the refused entry is left behind
