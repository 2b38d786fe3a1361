"""pip's choice of file per locked package, noted beside the wheelhouse: a lock change asks pip only
about what changed and gives the bytes a cold build gives; a note that is wrong, stale or planted
is never used."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import ROOT, copy_kit, make
from lambda_kit.steps import pipchoices
from lambda_kit.common import runtimes

TARGET = runtimes.pip_target_args(runtimes.lookup("3.11"), "x86_64")
HASHES = ("sha256:" + "a" * 64,)


def note(wheelhouse, entries: dict) -> None:
    data = {pipchoices.target_key(TARGET): {pipchoices.package_key(n, v, HASHES): f for (n, v), f in entries.items()}}
    (wheelhouse / pipchoices.FILE).write_text(json.dumps(data))


def test_a_note_is_used_only_for_a_wheel_the_target_accepts_that_is_in_the_wheelhouse(tmp_path):
    linux = "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    too_new = "numpy-2.2.7-cp311-cp311-manylinux_2_28_x86_64.whl"  # glibc 2.28: not for python3.11's 2.26
    mac = "numpy-2.2.8-cp311-cp311-macosx_14_0_arm64.whl"
    arm = "numpy-2.2.9-cp311-cp311-manylinux_2_17_aarch64.whl"
    for name in (linux, too_new, mac, arm, "outside.whl"):
        (tmp_path / name).write_bytes(b"")
    note(tmp_path, {("numpy", "==2.2.6"): linux, ("numpy", "==2.2.7"): too_new, ("numpy", "==2.2.8"): mac,
                    ("numpy", "==2.2.9"): arm, ("numpy", "==3.0"): "../outside.whl",
                    ("numpy", "==3.1"): "missing-1.0-py3-none-any.whl", ("numpy", "==3.2"): 42})  # fmt: skip
    notes = pipchoices.Choices(tmp_path, TARGET)
    assert notes.known("NumPy", "==2.2.6", HASHES) == tmp_path / linux
    assert notes.known("numpy", "==2.2.6", ("sha256:" + "b" * 64,)) is None  # the lock's hashes changed
    for version in ("==2.2.7", "==2.2.8", "==2.2.9", "==3.0", "==3.1", "==3.2"):
        assert notes.known("numpy", version, HASHES) is None, version
    assert (
        pipchoices.Choices(tmp_path, [*TARGET, "--platform", "linux_x86_64"]).known("numpy", "==2.2.6", HASHES) is None
    )


@pytest.mark.parametrize("content", ["not json", "[]", '{"x": []}', json.dumps({"a": {"b": 1}})])
def test_a_garbled_notes_file_is_ignored(tmp_path, content):
    (tmp_path / pipchoices.FILE).write_text(content)
    assert pipchoices.Choices(tmp_path, TARGET).known("six", "==1.17.0", HASHES) is None


@pytest.mark.network
def test_a_lock_change_asks_pip_only_about_what_changed_and_gives_a_cold_builds_bytes(tmp_path):
    """The small bench set, lock a then lock b (six 1.17.0 -> 1.16.0) without Docker; then lock b
    cold in another checkout; then a planted note (six's entry pointing at another locked file)."""
    warm, cold = copy_kit(tmp_path / "warm"), copy_kit(tmp_path / "cold")
    for project in (warm, cold):
        shutil.copytree(ROOT / "bench" / "projects" / "small" / "lambdas", project / "lambdas", dirs_exist_ok=True)
    lock = lambda project, v: [shutil.copy(ROOT / "bench" / "projects" / "small" / v / f, project / f)  # noqa: E731
                               for f in ("Pipfile", "Pipfile.lock")]  # fmt: skip
    build = ("package", "BUILDER=local", "PYTHON_VERSION=3.11", "HANDLER=app.handler")
    lock(warm, "a")
    assert make(warm, *build).returncode == 0
    lock(warm, "b")
    changed = make(warm, *build)
    assert changed.returncode == 0, changed.stderr + changed.stdout
    assert "lambda-kit: 11 files chosen for this target before" in changed.stdout
    assert "lambda-kit: wheelhouse: 0 files reused, 1 downloaded" in changed.stdout  # six 1.16.0 alone
    lock(cold, "b")
    assert make(cold, *build).returncode == 0
    assert (warm / "build.zip").read_bytes() == (cold / "build.zip").read_bytes()

    # A note pointing six at pydantic's wheel (in the wheelhouse, accepted tags, not six's hash): a
    # warning, pip is asked about six, and the zip is the cold build's again.
    notes_file = warm / ".lambda-kit" / "wheelhouse" / pipchoices.FILE
    data = json.loads(notes_file.read_text())
    (entries,) = data.values()
    six = next(k for k in entries if k.startswith("six=="))
    entries[six] = next(v for k, v in entries.items() if k.startswith("pydantic=="))
    notes_file.write_text(json.dumps(data))
    planted = make(warm, "-B", *build)
    assert planted.returncode == 0, planted.stderr + planted.stdout
    assert "lambda-kit: warning: the wheelhouse's note for six names pydantic-" in planted.stdout
    assert "lambda-kit: 11 files chosen for this target before" in planted.stdout
    assert (warm / "build.zip").read_bytes() == (cold / "build.zip").read_bytes()
