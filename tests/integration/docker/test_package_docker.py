"""`make package` end to end: a real Docker engine, real PyPI downloads, real zips read back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import (
    BASE_IMAGE,
    KIT_LABEL,
    RUNTIME,
    buildkit_env,
    kit_containers,
    kit_env,
    lock_versions,
    make,
    make_at_once,
)
from packaging.utils import canonicalize_name

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("no_leftover_containers")]

# Run a handler from a zip the way Lambda lays it out: unpacked into /var/task, nothing else added.
INVOKE = r"""
import io, json, os, sys, zipfile
data = sys.stdin.buffer.read()
zipfile.ZipFile(io.BytesIO(data)).extractall("/var/task")
sys.path[:0] = ["/var/task"]
module_name, function = sys.argv[1].rsplit(".", 1)
module = __import__(module_name, fromlist=[function])
class Context: aws_request_id = "req-1"
print(json.dumps(getattr(module, function)(json.loads(sys.argv[2]), Context())))
"""


def invoke(zip_path: Path, handler: str, event: dict) -> dict:
    result = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-i",
            "--label",
            KIT_LABEL,
            BASE_IMAGE,
            "python3",
            "-c",
            INVOKE,
            handler,
            json.dumps(event),
        ],
        input=zip_path.read_bytes(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def remove_kit_images_and_build_cache() -> None:
    ids = subprocess.run(
        ["docker", "images", "-aq", "--filter", f"label={KIT_LABEL}"], capture_output=True, text=True, check=True
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "image", "rm", "--force", *sorted(set(ids))], capture_output=True)
    subprocess.run(["docker", "builder", "prune", "--all", "--force"], capture_output=True, check=True)


def assert_failed_cleanly(result: subprocess.CompletedProcess, first_error: str, zip_path: Path, before: bytes) -> None:
    assert result.returncode != 0, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-kit: error:")]
    assert errors and errors[0].startswith(f"lambda-kit: error: {first_error}"), result.stderr
    assert "Traceback" not in result.stderr
    assert zip_path.read_bytes() == before
    assert [p.name for p in zip_path.parent.iterdir() if p.name.startswith(f".{zip_path.name}.")] == []


def test_sample_zip_holds_code_and_locked_packages_only_and_runs(sample):
    result = make(sample, "package")
    assert result.returncode == 0, result.stderr + result.stdout
    zip_path = sample / "build.zip"
    with zipfile.ZipFile(zip_path) as zf:
        infos = zf.infolist()
    names = {i.filename for i in infos}
    assert {"app.py", "pricing.yaml"} <= names
    installed = {}
    for name in names:
        top = name.split("/")[0]
        if top.endswith(".dist-info"):
            dist, version = top[: -len(".dist-info")].rsplit("-", 1)
            installed[canonicalize_name(dist)] = version
    assert installed == {canonicalize_name(n): v for n, v in lock_versions(sample).items()}
    assert not any(n.endswith((".pyc", ".pyo")) or "__pycache__" in n for n in names)
    assert not names & {"Pipfile", "Pipfile.lock"} and not any(n.startswith("bin/") for n in names)
    assert not any(n.split("/")[0] in ("pytest", "_pytest", "pluggy", "iniconfig") for n in names)
    assert any(n.endswith(".so") and "pydantic_core" in n for n in names), "the compiled extension is in"
    assert {stat.S_IMODE(i.external_attr >> 16) for i in infos} <= {0o644, 0o755}
    summary = result.stdout.splitlines()
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert f"  sha256      {digest}" in summary
    assert any(line.startswith("  CodeSha256  ") for line in summary)

    assert "lambda-kit: audit passed (0 warnings)" in summary
    audit = make(sample, "check")
    assert audit.returncode == 0 and audit.stdout.splitlines()[-1] == "lambda-kit: audit: 0 errors, 0 warnings"

    event = json.loads((sample / "events" / "order.json").read_text())
    response = invoke(zip_path, "app.handler", event)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"order_id": "A-1001", "total": "104.40", "request_id": "req-1"}


def test_nothing_changed_means_no_docker_and_a_code_change_needs_none_either(sample, tmp_path):
    assert make(sample, "package").returncode == 0
    zip_path = sample / "build.zip"
    before = zip_path.read_bytes()
    # A docker that records any call and fails: the no-op run must not call it at all.
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    calls = tmp_path / "docker-calls"
    (spy_dir / "docker").write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\necho "Cannot connect to the Docker daemon" >&2\nexit 1\n'
    )
    (spy_dir / "docker").chmod(0o755)
    env = kit_env(PATH=f"{spy_dir}:{os.environ['PATH']}")
    again = make(sample, "package", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "" and not calls.exists()

    # A code change rebuilds the zip, adding the code to the cached dependencies: still no docker.
    app = sample / "lambdas" / "app.py"
    app.write_text(app.read_text() + "\n# changed\n")
    changed = make(sample, "package", env=env)
    assert changed.returncode == 0, changed.stderr
    assert not calls.exists()
    assert "dependencies unchanged" in changed.stdout
    with_change = zip_path.read_bytes()
    assert with_change != before and zipfile.ZipFile(zip_path).read("app.py").endswith(b"# changed\n")

    # The same inputs through the full Docker build (make -B) give the same bytes.
    full = make(sample, "-B", "package")
    assert full.returncode == 0, full.stderr
    assert "docker build" in full.stdout and zip_path.read_bytes() == with_change

    # A lock change needs the build: with BUILDER=docker (no fallback) and docker gone, it fails cleanly.
    lock = sample / "Pipfile.lock"
    lock.write_text(lock.read_text().replace('"version": "==3.20"', '"version": "==3.10"'))
    broken = make(sample, "package", "BUILDER=docker", env=env)
    assert calls.exists(), "a lock change must rebuild"
    assert_failed_cleanly(broken, "the Docker daemon is not reachable", zip_path, with_change)


def test_stale_lock_is_refused_and_the_previous_zip_kept(sample):
    assert make(sample, "package").returncode == 0
    zip_path = sample / "build.zip"
    before = zip_path.read_bytes()
    pipfile = sample / "Pipfile"
    pipfile.write_text(pipfile.read_text().replace("[packages]\n", '[packages]\nsix = "*"\n'))
    result = make(sample, "package")
    assert_failed_cleanly(result, "Pipfile.lock is out of date", zip_path, before)
    assert "hint: run `pipenv lock`" in result.stderr


def test_tampered_hash_is_refused_and_the_previous_zip_kept(sample):
    assert make(sample, "package").returncode == 0
    zip_path = sample / "build.zip"
    before = zip_path.read_bytes()
    lock_path = sample / "Pipfile.lock"
    lock = json.loads(lock_path.read_text())
    lock["default"]["idna"]["hashes"] = ["sha256:" + "0" * 64]
    lock_path.write_text(json.dumps(lock, indent=4))
    result = make(sample, "package")
    # No file the index lists for idna has a hash the lock names (a hash mismatch is only a listed
    # file whose bytes differ: issue 24).
    assert_failed_cleanly(result, "idna==", zip_path, before)
    assert "files on pypi.org has a hash the lock names" in result.stderr


def test_two_builds_with_the_cache_cleared_between_give_identical_bytes_on_both_builders(sample):
    first = make(sample, "package", env=kit_env(DOCKER_BUILDKIT="0"))
    assert first.returncode == 0, first.stderr
    assert "(legacy builder)" in first.stdout
    zip_path = sample / "build.zip"
    legacy_bytes = zip_path.read_bytes()

    assert make(sample, "clean").returncode == 0  # the zip, the kit's state (dependency cache) and images
    assert not zip_path.exists() and not (sample / ".lambda-kit").exists()
    remove_kit_images_and_build_cache()
    buildkit = buildkit_env()
    if buildkit is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and no docker client here can build with BuildKit")
        buildkit = {"DOCKER_BUILDKIT": "0"}
    second = make(sample, "package", env=kit_env(**buildkit))
    assert second.returncode == 0, second.stderr
    log = (sample / ".lambda-kit" / "build.log").read_text()
    assert "lambda-kit: fetched pydantic_core-" in log, "the second build really fetched again"
    assert zip_path.read_bytes() == legacy_bytes


def test_editable_local_path_is_installed_as_a_package_and_markers_hold(local_lib_project):
    result = make(local_lib_project, "package", "HANDLER=handler.main")
    assert result.returncode == 0, result.stderr + result.stdout
    zip_path = local_lib_project / "build.zip"
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert "orders_common/__init__.py" in names and "orders_common-1.4.0.dist-info/METADATA" in names
    assert "six.py" in names
    assert not any(n.endswith((".pth", ".egg-link")) or "__editable__" in n for n in names)
    assert not any(n.startswith(("tomli", "iniconfig")) for n in names)
    assert invoke(zip_path, "handler.main", {"sku": " Widget "}) == {"sku": "widget", "lib": "1.4.0", "six": "1.17.0"}


def test_index_credentials_never_reach_an_image_layer(sample):
    token = "s3cr3t-kit-token-4f1d"
    index = f"https://kit-user:{token}@pypi.org/simple"
    legacy = make(sample, "package", f"INDEX_URL={index}", env=kit_env(DOCKER_BUILDKIT="0"))
    assert legacy.returncode == 2
    assert legacy.stderr.splitlines()[0].startswith(
        "lambda-kit: error: index credentials would be stored in the image's layers by the legacy builder"
    )
    assert token not in legacy.stderr + legacy.stdout

    buildkit = buildkit_env()
    if buildkit is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set and no docker client here can build with BuildKit")
        pytest.skip("no docker client with BuildKit")
    env = kit_env(**buildkit, INDEX_URL=index)
    result = make(sample, "package", env=env)
    assert result.returncode == 0, result.stderr
    tag = next(line.split()[3] for line in result.stdout.splitlines() if line.startswith("lambda-kit: docker build "))
    history = subprocess.run(
        ["docker", "history", "--no-trunc", tag], capture_output=True, text=True, check=True
    ).stdout
    inspect = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, text=True, check=True).stdout
    assert token not in history and token not in inspect
    saved = subprocess.run(["docker", "save", tag], capture_output=True, check=True).stdout
    assert token.encode() not in saved


def test_sigterm_mid_build_kills_docker_removes_everything_and_keeps_the_zip(sample):
    assert make(sample, "package").returncode == 0
    zip_path = sample / "build.zip"
    before = zip_path.read_bytes()
    (sample / "lambdas" / "blob.bin").write_bytes(os.urandom(150 * 1024 * 1024))  # a slow COPY and zip
    own_tmp = (
        sample / ".lambda-kit" / "tmp"
    )  # the run's folder holds the build context: this test's build is recognisable
    helper = subprocess.Popen(
        [
            sys.executable,
            str(sample / "scripts" / "lambda-kit"),
            "package",
            "--runtime",
            RUNTIME,
            "--fresh",
            "--base-image",
            BASE_IMAGE,
            "--src",
            "lambdas",
            "--out",
            "build.zip",
        ],
        cwd=sample,
        env=kit_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in helper.stdout:
        if line.startswith("lambda-kit: docker build "):
            break
    helper.send_signal(signal.SIGTERM)
    _, err = helper.communicate(timeout=120)
    assert helper.returncode == 143
    assert err.splitlines()[-1] == "lambda-kit: error: interrupted (SIGTERM); the previous zip is untouched"
    assert zip_path.read_bytes() == before
    leftover = subprocess.run(["pgrep", "-f", f"docker build --file {own_tmp}"], capture_output=True, text=True).stdout
    assert leftover == ""
    assert not own_tmp.exists() or list(own_tmp.iterdir()) == []  # the run's folder went with it
    assert kit_containers(sample.parent) == []


def test_base_image_running_another_python_is_refused(sample):
    result = make(sample, "package", "PYTHON_VERSION=3.12")  # the stand-in image runs 3.11
    assert result.returncode != 0
    assert (
        result.stderr.splitlines()[0]
        == "lambda-kit: error: the base image runs Python 3.11, but the runtime is python3.12"
    )
    assert not (sample / "build.zip").exists()


def test_two_checkouts_building_at_once_on_one_engine_both_succeed(tmp_path, sample):
    # Like two Jenkins jobs on one agent: separate checkouts, one docker engine, at the same time.
    other = tmp_path / "second-checkout"
    shutil.copytree(sample, other, ignore=shutil.ignore_patterns(".lambda-kit", "build.zip"))
    results = make_at_once([sample, other], "-B", "package")
    for out, err, code in results:
        assert code == 0, err + out
    tags = {
        line.split()[3]
        for out, _, _ in results
        for line in out.splitlines()
        if line.startswith("lambda-kit: docker build ")
    }
    assert len(tags) == 2, "each checkout builds under its own image tag"
    assert (sample / "build.zip").read_bytes() == (other / "build.zip").read_bytes()


def test_arm64_zip_on_an_x86_64_engine_without_emulation(sample):
    result = make(sample, "package", "ARCH=arm64")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "cross-installing arm64 wheels on x86_64" in result.stdout
    zip_path = sample / "build.zip"
    natives = [n for n in zipfile.ZipFile(zip_path).namelist() if n.endswith(".so")]
    assert natives and all("-aarch64-linux-gnu.so" in n for n in natives)
    audit = subprocess.run(
        [
            sys.executable,
            str(sample / "scripts" / "lambda-kit"),
            "check",
            str(zip_path),
            "--runtime",
            RUNTIME,
            "--arch",
            "arm64",
            "--handler",
            "app.handler",
            "--lock",
            str(sample / "Pipfile.lock"),
        ],
        env=kit_env(),
        capture_output=True,
        text=True,
    )
    assert audit.returncode == 0 and audit.stdout.splitlines()[-1] == "lambda-kit: audit: 0 errors, 0 warnings"
    docker_bytes = zip_path.read_bytes()
    local = make(sample, "package", "ARCH=arm64", "BUILDER=local")
    assert local.returncode == 0, local.stderr
    assert zip_path.read_bytes() == docker_bytes, "the same arm64 zip with or without Docker"


class TcpToDockerSocket:
    """A TCP port forwarding to the local engine's socket: the engine as a remote one is reached."""

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        import socket
        import threading

        self.socket_path = socket_path
        self.connections = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._socket, self._threading = socket, threading
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            upstream = self._socket.socket(self._socket.AF_UNIX)
            upstream.connect(self.socket_path)
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, dest) -> None:
        try:
            while data := source.recv(65536):
                dest.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, dest):
                try:
                    s.shutdown(2)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.server.close()


def test_docker_host_pointing_elsewhere_is_honoured(sample):
    if not os.path.exists("/var/run/docker.sock") or os.environ.get("DOCKER_HOST"):
        if os.environ.get("CI"):  # CI never passes by skipping the real thing
            pytest.fail("CI is set and the engine is not on the default local socket (.ci/run starts it there)")
        pytest.skip("needs the engine on the default local socket to stand in for a remote one")
    proxy = TcpToDockerSocket()
    try:
        result = make(sample, "package", env=kit_env(DOCKER_HOST=f"tcp://127.0.0.1:{proxy.port}"))
    finally:
        proxy.close()
    assert result.returncode == 0, result.stderr + result.stdout
    assert proxy.connections >= 3  # version, build, create, cp, rm: all through DOCKER_HOST
    assert zipfile.ZipFile(sample / "build.zip").testzip() is None
