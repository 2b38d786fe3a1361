"""pip's choice of file per locked package, noted beside the wheelhouse: a note is used only for
a wheel the target accepts that is in the wheelhouse; a garbled notes file is ignored. A lock
change through make: integration/network/test_pipchoices_network.py."""

from __future__ import annotations

import json

import pytest
from lambda_kit.common import runtimes
from lambda_kit.steps import pipchoices
from lambda_kit.steps.target import Target

TARGET = Target(runtimes.lookup("3.11"), "x86_64")
HASHES = ("sha256:" + "a" * 64,)


def note(wheelhouse, entries: dict) -> None:
    data = {TARGET.key(): {pipchoices.package_key(n, v, HASHES): f for (n, v), f in entries.items()}}
    (wheelhouse / pipchoices.FILE).write_text(json.dumps(data))


def test_a_note_is_used_only_for_a_wheel_the_target_accepts_that_is_in_the_wheelhouse(tmp_path):
    linux = "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    too_new = "numpy-2.2.7-cp311-cp311-manylinux_2_28_x86_64.whl"  # glibc 2.28: not for python3.11's 2.26
    mac = "numpy-2.2.8-cp311-cp311-macosx_14_0_arm64.whl"
    arm = "numpy-2.2.9-cp311-cp311-manylinux_2_17_aarch64.whl"
    for name in (linux, too_new, mac, arm, "outside.whl"):
        (tmp_path / name).write_bytes(b"")
    note(
        tmp_path,
        {
            ("numpy", "==2.2.6"): linux,
            ("numpy", "==2.2.7"): too_new,
            ("numpy", "==2.2.8"): mac,
            ("numpy", "==2.2.9"): arm,
            ("numpy", "==3.0"): "../outside.whl",
            ("numpy", "==3.1"): "missing-1.0-py3-none-any.whl",
            ("numpy", "==3.2"): 42,
        },
    )
    notes = pipchoices.Choices(tmp_path, TARGET)
    assert notes.known("NumPy", "==2.2.6", HASHES) == tmp_path / linux
    assert notes.known("numpy", "==2.2.6", ("sha256:" + "b" * 64,)) is None  # the lock's hashes changed
    for version in ("==2.2.7", "==2.2.8", "==2.2.9", "==3.0", "==3.1", "==3.2"):
        assert notes.known("numpy", version, HASHES) is None, version
    assert (
        pipchoices.Choices(tmp_path, Target(TARGET.runtime, TARGET.arch, sources_allowed=True)).known(
            "numpy", "==2.2.6", HASHES
        )
        is None
    )


@pytest.mark.parametrize("content", ["not json", "[]", '{"x": []}', json.dumps({"a": {"b": 1}})])
def test_a_garbled_notes_file_is_ignored(tmp_path, content):
    (tmp_path / pipchoices.FILE).write_text(content)
    assert pipchoices.Choices(tmp_path, TARGET).known("six", "==1.17.0", HASHES) is None
