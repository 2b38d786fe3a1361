"""pip's noted choices through make: a lock change asks pip only about what changed and gives the
bytes a cold build gives; a planted note is a warning, never used."""

from __future__ import annotations

import json
import shutil

from helpers import ROOT, copy_kit, make
from lambda_kit.steps import pipchoices


def test_a_lock_change_asks_pip_only_about_what_changed_and_gives_a_cold_builds_bytes(tmp_path):
    """The small bench set, lock a then lock b (six 1.17.0 -> 1.16.0) without Docker; then lock b
    cold in another checkout; then a planted note (six's entry pointing at another locked file)."""
    warm, cold = copy_kit(tmp_path / "warm"), copy_kit(tmp_path / "cold")
    for project in (warm, cold):
        shutil.copytree(ROOT / "bench" / "projects" / "small" / "lambdas", project / "lambdas", dirs_exist_ok=True)
    lock = lambda project, v: [  # noqa: E731
        shutil.copy(ROOT / "bench" / "projects" / "small" / v / f, project / f) for f in ("Pipfile", "Pipfile.lock")
    ]
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
