"""CACHE_URL: a dependency cache shared by CI agents, against a real moto S3 server on 127.0.0.1 and a
real shared folder. Agent A builds and pushes; agent B, another checkout in another folder with an
empty state and no docker on PATH, gets the same bytes from the store."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import BASE_IMAGE, RUNTIME, copy_sample, kit_env, make, make_at_once, path_without_docker
from lambda_kit import auditnative, sharedcache
from lambda_kit.buildplan import PackageSettings, resolve
from lambda_kit.package import dependency_key


def without_docker(tmp_path: Path) -> str:
    path = path_without_docker(tmp_path / "bin-without-docker")
    assert shutil.which("docker", path=path) is None
    return path


def agent(project: Path, cache_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return make(project, "package", *args, env=kit_env(CACHE_URL=cache_url, **env))


def aws_env(local_aws) -> dict[str, str]:
    """The settings that point the kit at the test session's moto server."""
    return local_aws.env({})


def warnings(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("lambda-kit: warning:")]


def dep_key(result: subprocess.CompletedProcess) -> str:
    """The 12-character key the agent printed."""
    line = next(line for line in result.stdout.splitlines() if "(key " in line)
    return line.split("(key ", 1)[1][:12]


def folder_snapshot(store: Path) -> dict[str, str]:
    return {
        p.relative_to(store).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in store.rglob("*")
        if p.is_file()
    }


def s3_snapshot(s3, bucket: str) -> dict[str, str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: hashlib.sha256(s3.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest() for k in keys}


def new_bucket(fake) -> tuple[object, str]:
    s3 = fake.client("s3")
    bucket = f"lambda-kit-cache-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


def assert_verified(snapshot: dict[str, str], read) -> None:
    """Every deps.zip in the store matches the digest stored beside it; no temporary object is left."""
    zips = [k for k in snapshot if k.startswith("deps/") and k.endswith(".zip")]
    assert zips and all(read(k + ".sha256").strip() == snapshot[k] for k in zips)
    assert not [k for k in snapshot if k.startswith("tmp/") or k.rsplit("/", 1)[-1].startswith(".")]


def test_key_is_shared_by_checkouts_in_other_folders_and_changes_with_what_changes_the_bytes(tmp_path):
    a = copy_sample(tmp_path / "agent-a" / "workspace" / "repo")
    b = copy_sample(tmp_path / "ci" / "job-42" / "another-name")

    def key(project: Path, builder: str = "docker", **changes) -> str:
        settings = dict(runtime=RUNTIME, arch="x86_64", base_image=BASE_IMAGE, slim=False)
        s = PackageSettings(kit_dir=project, pipfile=project / "Pipfile", src=project / "lambdas",
                            out=project / "build.zip", state_dir=project / ".lambda-kit", **{**settings, **changes})  # fmt: skip
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


@pytest.mark.parametrize(
    "setting, first_line",
    [
        (
            "CACHE_URL=gs://bucket/prefix",
            "lambda-kit: error: CACHE_URL is neither s3:// nor a folder (gs://bucket/prefix)",
        ),
        ("CACHE_URL=s3://", "lambda-kit: error: CACHE_URL names no valid S3 bucket (s3://)"),
        ("CACHE_URL=s3://Bad_Bucket/x", "lambda-kit: error: CACHE_URL names no valid S3 bucket (s3://Bad_Bucket/x)"),
        ("CACHE_PUSH=yes", "lambda-kit: error: CACHE_PUSH must be 0 or 1 (yes)"),
    ],
)
def test_bad_cache_settings_are_one_line_and_keep_the_previous_zip(sample, setting, first_line):
    (sample / "build.zip").write_bytes(b"previous zip")
    os.utime(sample / "build.zip", (0, 0))
    result = make(sample, "package", setting)
    assert result.returncode == 2
    assert result.stderr.splitlines()[:1] == [first_line]
    assert result.stderr.splitlines()[1].startswith("hint: ") and "Traceback" not in result.stderr
    assert (sample / "build.zip").read_bytes() == b"previous zip"


def test_wheelhouse_files_from_the_store_are_verified_and_bounded(tmp_path, monkeypatch):
    store, wheelhouse = tmp_path / "store", tmp_path / "wheelhouse"
    files = {"good-1.0-py3-none-any.whl": b"good" * 10, "tampered-1.0-py3-none-any.whl": b"real" * 10,
             "huge-1.0-py3-none-any.whl": b"h" * 300}  # fmt: skip
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    lock = {"default": {n.split("-")[0]: {"version": "==1.0", "hashes": [f"sha256:{digests[n]}"]} for n in files}}
    for name, data in files.items():
        path = store / "wheels" / digests[name] / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b"evil" * 10 if name.startswith("tampered") else data)
    monkeypatch.setattr(sharedcache, "MAX_OBJECT_BYTES", 100)
    said = []
    sharedcache.SharedCache(str(store), True, said.append).fetch_wheels(lock, wheelhouse)
    assert sorted(p.name for p in wheelhouse.iterdir()) == ["good-1.0-py3-none-any.whl"]
    assert (wheelhouse / "good-1.0-py3-none-any.whl").read_bytes() == files["good-1.0-py3-none-any.whl"]
    refused = [line for line in said if line.startswith("lambda-kit: warning:")]
    assert len(refused) == 2
    tampered = (
        f"wheels/{digests['tampered-1.0-py3-none-any.whl']}/tampered-1.0-py3-none-any.whl does not match its SHA-256"
    )
    assert any(tampered in line for line in refused)
    assert any("huge-1.0" in line and "larger than 100 bytes" in line for line in refused)


@pytest.mark.network
def test_folder_store_agent_b_gets_the_same_zip_without_docker_and_a_tampered_object_is_rebuilt(sample, tmp_path):
    store = tmp_path / "shared-mount"
    store.mkdir()
    first = agent(sample, str(store), "BUILDER=local")
    assert first.returncode == 0, first.stderr + first.stdout
    assert "lambda-kit: pushed to cache" in first.stdout
    expected = (sample / "build.zip").read_bytes()
    key = dep_key(first)

    b = copy_sample(tmp_path / "agent-b" / "ws")
    second = agent(b, str(store), "BUILDER=local", PATH=without_docker(tmp_path))
    assert second.returncode == 0, second.stderr + second.stdout
    assert f"lambda-kit: dependencies from cache {store} (key {key}), no build needed (" in second.stdout
    assert "local build" not in second.stdout and warnings(second) == []
    assert (b / "build.zip").read_bytes() == expected
    assert auditnative.load_facts(b / ".lambda-kit" / "audit-native.json")  # the audit's facts came along
    assert auditnative.load_facts(b / ".lambda-kit" / "audit-needed.json")  # and the libraries each needs

    (zipped,) = store.glob("deps/*.zip")
    data = bytearray(zipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    zipped.write_bytes(bytes(data))
    c = copy_sample(tmp_path / "agent-c" / "ws")
    third = agent(c, str(store), "BUILDER=local", PATH=without_docker(tmp_path))
    assert third.returncode == 0, third.stderr + third.stdout
    (refused,) = warnings(third)
    assert f"deps/{zipped.stem}.zip (key {key}) does not match its SHA-256" in refused
    assert "local build (no Docker)" in third.stdout
    assert "of the lock's files from cache" in third.stdout  # the wheels came from the store, not PyPI
    assert "wheelhouse: 11 files reused, 0 downloaded" in third.stdout
    assert (c / "build.zip").read_bytes() == expected
    assert_verified(folder_snapshot(store), lambda name: (store / name).read_text())  # C pushed a good copy back


@pytest.mark.network
def test_s3_store_agent_b_gets_the_same_zip_and_a_truncated_object_is_refused_by_a_read_only_agent(
    sample, tmp_path, local_aws
):
    s3, bucket = new_bucket(local_aws)
    url = f"s3://{bucket}/fleet/python"
    first = agent(sample, url, "BUILDER=local", **aws_env(local_aws))
    assert first.returncode == 0, first.stderr + first.stdout
    expected = (sample / "build.zip").read_bytes()
    key = dep_key(first)
    stored = s3_snapshot(s3, bucket)
    assert all(k.startswith("fleet/python/") for k in stored)
    relative = {k[len("fleet/python/") :]: v for k, v in stored.items()}
    assert len([k for k in relative if k.startswith("wheels/")]) == 11
    assert_verified(
        relative, lambda name: s3.get_object(Bucket=bucket, Key="fleet/python/" + name)["Body"].read().decode()
    )

    b = copy_sample(tmp_path / "agent-b" / "ws")
    second = agent(b, url, "BUILDER=local", PATH=without_docker(tmp_path), **aws_env(local_aws))
    assert second.returncode == 0, second.stderr + second.stdout
    assert f"lambda-kit: dependencies from cache {url} (key {key}), no build needed (" in second.stdout
    assert (b / "build.zip").read_bytes() == expected

    (deps_key,) = [k for k in stored if k.startswith("fleet/python/deps/") and k.endswith(".zip")]
    whole = s3.get_object(Bucket=bucket, Key=deps_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=deps_key, Body=whole[: len(whole) // 3])
    before = s3_snapshot(s3, bucket)
    c = copy_sample(tmp_path / "agent-c" / "ws")
    third = agent(c, url, "BUILDER=local", "CACHE_PUSH=0", PATH=without_docker(tmp_path), **aws_env(local_aws))
    assert third.returncode == 0, third.stderr + third.stdout
    (refused,) = warnings(third)
    assert f"(key {key}) does not match its SHA-256 ({len(whole) // 3:,} bytes" in refused
    assert "local build (no Docker)" in third.stdout and "pushed to cache" not in third.stdout
    assert (c / "build.zip").read_bytes() == expected
    assert s3_snapshot(s3, bucket) == before  # CACHE_PUSH=0: the store is untouched


@pytest.mark.network
def test_two_agents_pushing_the_same_key_at_once_both_succeed(sample, tmp_path, local_aws):
    s3, bucket = new_bucket(local_aws)
    url = f"s3://{bucket}"
    other = copy_sample(tmp_path / "agent-2" / "ws")
    env = kit_env(CACHE_URL=url, **aws_env(local_aws))
    results = make_at_once([sample, other], "package", "BUILDER=local", env=env)
    for out, err, code in results:
        assert code == 0, err + out
        assert "lambda-kit: warning" not in out
    assert sum("lambda-kit: pushed to cache" in out for out, _, _ in results) == 2  # both missed, built and pushed
    assert (sample / "build.zip").read_bytes() == (other / "build.zip").read_bytes()
    assert_verified(
        s3_snapshot(s3, bucket), lambda name: s3.get_object(Bucket=bucket, Key=name)["Body"].read().decode()
    )


@pytest.mark.network
def test_an_unreachable_store_is_one_warning_and_the_build_goes_on(sample):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull}  # fmt: skip
    result = agent(sample, "s3://no-such-store/deps", "BUILDER=local", **fake)
    assert result.returncode == 0, result.stderr + result.stdout
    (warning,) = warnings(result)
    assert warning.startswith(
        "lambda-kit: warning: cache s3://no-such-store/deps unreachable while looking up the dependencies ("
    )
    assert "local build (no Docker)" in result.stdout and (sample / "build.zip").is_file()


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.usefixtures("no_leftover_containers")
def test_docker_build_pushed_to_s3_gives_an_agent_without_docker_the_same_zip(sample, tmp_path, local_aws):
    s3, bucket = new_bucket(local_aws)
    url = f"s3://{bucket}/docker"
    first = agent(sample, url, **aws_env(local_aws))
    try:
        assert first.returncode == 0, first.stderr + first.stdout
        assert "lambda-kit: docker build" in first.stdout and "lambda-kit: pushed to cache" in first.stdout
        b = copy_sample(tmp_path / "agent-b" / "ws")
        second = agent(b, url, PATH=without_docker(tmp_path), **aws_env(local_aws))
        assert second.returncode == 0, second.stderr + second.stdout
        assert f"lambda-kit: dependencies from cache {url} (key {dep_key(first)}), no build needed (" in second.stdout
        assert (b / "build.zip").read_bytes() == (sample / "build.zip").read_bytes()
    finally:
        assert make(sample, "clean").returncode == 0  # this checkout's images


def test_a_fifo_planted_in_the_folder_store_is_one_warning_not_a_hang(tmp_path):
    store = tmp_path / "store"
    (store / "deps").mkdir(parents=True)
    os.mkfifo(store / "deps" / f"{'a' * 64}.zip.sha256")
    (tmp_path / "work").mkdir()
    said = []
    cache = sharedcache.SharedCache(str(store), True, said.append)
    assert cache.restore(["a" * 64], lambda key, path, digest: path, tmp_path / "work") is None
    assert len(said) == 1
    assert said[0].startswith(
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
        assert not sharedcache.merge_native_facts(bad, target)
    for text in ('["elf"]', "not json", '{"b.so|1|2": ["other", "x"]}'):  # not a verified facts file at all
        bad.write_text(text)
        assert not sharedcache.merge_native_facts(bad, target)
    assert sharedcache.merge_native_facts(good, target)
    merged = auditnative.load_facts(target)
    assert merged == {"a.so|00000001|10": ["elf", "x86_64", 2, 17], "b.so|00000002|20": ["other", "Mach-O"],
                      "c.so|00000003|30": ["elf", "x86_64", 2, 28]}  # fmt: skip


def test_bytecode_verdicts_and_needed_libraries_from_the_store_are_merged_only_in_their_shape(tmp_path):
    """COMPILE=1 puts bytecode verdicts beside the native facts; the native-needed rule keeps its own
    cache of each file's ELF links. Both travel with deps.zip and are shape-checked before use."""
    natives, needed, source = tmp_path / "audit-native.json", tmp_path / "audit-needed.json", tmp_path / "in.json"
    verdicts = {"bytecode|3.12|a.pyc|00000001|00000002": [],
                "bytecode|3.12|b.pyc|00000003|ffffffff": ["bytecode-orphan", "bytecode without its source"]}  # fmt: skip
    auditnative.save_facts(source, verdicts)
    assert sharedcache.merge_native_facts(source, natives)
    assert auditnative.load_facts(natives) == verdicts
    auditnative.save_facts(source, {"bytecode|3.12|c.pyc|1|2": ["bytecode-stale"]})
    assert not sharedcache.merge_native_facts(source, natives)

    links = {"a.so|00000001|10": [[["libc.so.6", "libm.so.6"], [], ["$ORIGIN/../lib"]]], "b.so|00000002|20": [None]}
    auditnative.save_facts(source, links)
    assert not sharedcache.merge_native_facts(source, natives)  # not native facts
    assert sharedcache.merge_native_facts(source, needed, sharedcache._is_links_entry)
    assert auditnative.load_facts(needed) == links
    for entry in ([], [None, None], [[["libc.so.6"], []]], [[["libc.so.6"], [], [1]]], ["elf", "x86_64", 2, 17]):
        auditnative.save_facts(source, {"c.so|00000003|30": entry})
        assert not sharedcache.merge_native_facts(source, needed, sharedcache._is_links_entry)
    assert auditnative.load_facts(needed) == links
