"""COMPILE=1 end to end: built in the stand-in image (python3.11), read back, run with `make smoke`."""

from __future__ import annotations

import json
import subprocess
import zipfile

import pytest
from helpers import BASE_IMAGE, KIT_LABEL, RUNTIME, make
from lambda_kit.steps import bytecode

pytestmark = pytest.mark.usefixtures("no_leftover_containers")


def remove_compiled_images() -> None:
    """Kit images whose build ran with COMPILE=1 (the legacy builder records build arguments in the
    history): only this branch's tests build them. Nothing is pruned."""
    ids = subprocess.run(
        ["docker", "images", "-aq", "--filter", f"label={KIT_LABEL}"], capture_output=True, text=True, check=True
    ).stdout.split()
    for image in sorted(set(ids)):
        history = subprocess.run(
            ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if "COMPILE=1" in history:
            subprocess.run(["docker", "image", "rm", "--force", image], capture_output=True, check=False)


def smoke_report(project, *settings: str) -> dict:
    result = make(
        project, "package", "smoke", *settings, "JSON=1", f"RUNTIME_IMAGE={BASE_IMAGE}", "EVENT=events/order.json"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout.splitlines()[-1])  # make first builds the zip if needed


def test_compiled_zip_ships_valid_bytecode_that_the_read_only_import_uses(sample):
    default = smoke_report(sample)
    assert default["ok"] and default["init_ms"] > 0 and default["duration_ms"] > 0
    assert "app.py" in default["compiled_at_init"] and "yaml/__init__.py" in default["compiled_at_init"]

    built = make(sample, "package", "COMPILE=1")
    assert built.returncode == 0, built.stderr + built.stdout
    assert "lambda-kit: audit passed (0 warnings)" in built.stdout
    with zipfile.ZipFile(sample / "build.zip") as zf:
        names = set(zf.namelist())
        pycs = {n: zf.read(n) for n in names if n.endswith(".pyc")}
        sources = {n: zf.read(bytecode.source_of(n)) for n in pycs}
    assert "__pycache__/app.cpython-311.pyc" in pycs and "yaml/__pycache__/__init__.cpython-311.pyc" in pycs
    assert not any("/tests/" in n for n in pycs)  # what imports run, not everything
    magic, key = bytecode.magic_bytes(RUNTIME), int.from_bytes(bytecode.magic_bytes(RUNTIME), "little")
    import _imp

    for name, data in pycs.items():
        assert f".{bytecode.cache_tag(RUNTIME)}.pyc" in name
        assert data[:4] == magic, name
        # hash-based: unchecked for dependencies, checked for the code (an edit after the build wins)
        code = name == "__pycache__/app.cpython-311.pyc"
        assert int.from_bytes(data[4:8], "little") == bytecode.FLAG_HASH | (bytecode.FLAG_CHECK if code else 0), name
        assert data[8:16] == _imp.source_hash(key, sources[name]), name

    static = smoke_report(sample, "COMPILE=1")
    assert static["ok"] and static["result"] == default["result"].replace(default["request_id"], static["request_id"])
    # The static graph misses what pydantic imports lazily (module __getattr__): a profile run records it.
    assert "app.py" not in static["compiled_at_init"] and "yaml/__init__.py" not in static["compiled_at_init"]
    assert len(static["compiled_at_init"]) < len(default["compiled_at_init"])
    profiled = make(sample, "profile", f"RUNTIME_IMAGE={BASE_IMAGE}", "EVENT=events/order.json")
    assert profiled.returncode == 0, profiled.stderr + profiled.stdout
    summary = next(line for line in profiled.stdout.splitlines() if line.startswith("lambda-kit: smoke passed: "))
    assert " ms after an init of " in summary and " modules of the zip compiled from source at init)" in summary
    recorded = (sample / "lambda-kit.imports").read_text().split()
    assert set(static["compiled_at_init"]) <= set(recorded) and "app.py" in recorded

    compiled = smoke_report(sample, "COMPILE=1")  # the profile is the zip's prerequisite: rebuilt with it
    with zipfile.ZipFile(sample / "build.zip") as zf:
        assert all(
            bytecode.judge(zf.read(n), zf.read(bytecode.source_of(n)), n, RUNTIME) is None
            for n in zf.namelist()
            if n.endswith(".pyc")
        )
    # Unpacked read-only, imported as uid 993: nothing of the zip compiled from source at init.
    assert compiled["compiled_at_init"] == [] and compiled["ok"]


def test_two_cold_compiled_builds_are_byte_identical_and_a_code_change_needs_no_docker(sample):
    first = make(sample, "package", "COMPILE=1")
    assert first.returncode == 0, first.stderr + first.stdout
    zip_path = sample / "build.zip"
    first_bytes = zip_path.read_bytes()
    assert make(sample, "clean").returncode == 0  # the zip, the dependency cache and this checkout's images
    remove_compiled_images()  # and the layers earlier COMPILE=1 builds (only this file's) left to reuse
    second = make(sample, "package", "COMPILE=1")
    assert second.returncode == 0, second.stderr + second.stdout
    log = (sample / ".lambda-kit" / "build.log").read_text()
    assert "dependency modules compiled (unchecked-hash)" in log  # the dependency step ran again, not from a layer
    assert zip_path.read_bytes() == first_bytes

    # A code change: the host (python3.11, the runtime's) compiles the code, the dependencies'
    # bytecode comes from the cached build.
    app = sample / "lambdas" / "app.py"
    app.write_text(app.read_text() + "\n# changed\n")
    changed = make(sample, "package", "COMPILE=1")
    assert changed.returncode == 0, changed.stderr
    assert "dependencies unchanged" in changed.stdout and "docker build" not in changed.stdout
    changed_bytes = zip_path.read_bytes()
    with zipfile.ZipFile(zip_path) as zf:
        pyc = zf.read("__pycache__/app.cpython-311.pyc")
        assert bytecode.judge(pyc, zf.read("app.py"), "__pycache__/app.cpython-311.pyc", RUNTIME) is None
    # The same inputs through the full Docker build: the host's python3.11 compiled the same bytes.
    full = make(sample, "-B", "package", "COMPILE=1")
    assert full.returncode == 0, full.stderr
    assert "docker build" in full.stdout and zip_path.read_bytes() == changed_bytes


@pytest.mark.network
def test_the_local_builder_compiles_the_same_bytes_as_the_build_image(sample):
    docker_build = make(sample, "package", "COMPILE=1", "BUILDER=docker", "ZIP=docker.zip")
    assert docker_build.returncode == 0, docker_build.stderr + docker_build.stdout
    local_build = make(sample, "package", "COMPILE=1", "BUILDER=local", "ZIP=local.zip")
    assert local_build.returncode == 0, local_build.stderr + local_build.stdout
    assert "local build (no Docker)" in local_build.stdout
    # Host python3.11.x and the image's python3.11.2: one bytecode format, one compiler, the same bytes.
    assert (sample / "local.zip").read_bytes() == (sample / "docker.zip").read_bytes()
