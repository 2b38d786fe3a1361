"""Interrupts never lose the zip: a build stopped at any point (Ctrl-C to the whole process group,
or SIGTERM to make alone, as Jenkins does) leaves a valid zip, the old one or the new one, no
temporary files, and no pip still running. BUILDER=local on the sample: cheap once warm."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from helpers import BASE_IMAGE, RUNTIME, kit_env, make
from lambda_kit.steps import pipchoices


def start(project: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    argv = [
        "make",
        "--no-print-directory",
        f"PYTHON_VERSION={RUNTIME}",
        f"BASE_IMAGE={BASE_IMAGE}",
        "package",
        "BUILDER=local",
        *args,
    ]
    return subprocess.Popen(
        argv,
        cwd=project,
        env=env or kit_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_line(proc: subprocess.Popen, text: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"the build ended before {text!r}: {''.join(seen)}")


def leftovers(project: Path) -> list[str]:
    """Temporary files and folders a run should have removed, and kit processes still running."""
    state_tmp = project / ".lambda-kit" / "tmp"
    found = [str(p) for p in state_tmp.iterdir()] if state_tmp.is_dir() else []
    found += [p.name for p in project.iterdir() if p.name.startswith(".build.zip")]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(project) in cmdline and int(proc.name) != os.getpid():
                found.append(f"process {proc.name}: {cmdline[:120]}")
    return found


def valid_zip(path: Path) -> bytes:
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    return data


def test_an_interrupt_at_any_point_leaves_the_old_zip_or_the_new_one(sample):
    warm = make(sample, "package", "BUILDER=local")
    assert warm.returncode == 0, warm.stderr + warm.stdout
    app = sample / "lambdas" / "app.py"
    original = app.read_text()
    old = valid_zip(sample / "build.zip")
    # (when, whom): after a line, or a delay; the process group (Ctrl-C) or make alone (SIGTERM)
    points = [
        ("audit passed", "group"),
        ("audit passed", "make"),
        ("dependencies unchanged", "group"),
        (0.0, "group"),
        (0.1, "group"),
        (0.3, "make"),
        (0.5, "group"),
        (0.8, "make"),
        (1.2, "group"),
    ]
    outcomes = []
    for i, (when, whom) in enumerate(points):
        app.write_text(original + f"\n# change {i}\n")
        time.sleep(0.01)  # a newer mtime than the zip's
        proc = start(sample)
        if isinstance(when, str):
            wait_for_line(proc, when)
        else:
            time.sleep(when)
        if whom == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
        zip_bytes = valid_zip(sample / "build.zip")  # there, whole, whatever the moment
        if whom == "make" and leftovers(sample):
            # SIGTERM to make alone reaches its recipe's helper as make passes it on; one that lands while
            # the helper's interpreter starts, before the launcher takes signals over, is lost (README:
            # the command then runs to its end). Wait for that end: nothing may stay behind it.
            deadline = time.monotonic() + 120
            while leftovers(sample) and time.monotonic() < deadline:
                time.sleep(0.2)
            zip_bytes = valid_zip(sample / "build.zip")
        with zipfile.ZipFile(sample / "build.zip") as zf:
            shipped = zf.read("app.py").decode()
        assert zip_bytes == old or shipped == app.read_text(), (when, whom, output)
        assert "Deleting file" not in output and "Traceback" not in output, output
        assert leftovers(sample) == [], (when, whom)
        outcomes.append("new" if zip_bytes != old else "old")
        old = zip_bytes
    assert "old" in outcomes  # some interrupts came before the replace


def test_sigterm_to_make_stops_pip_and_the_next_run_cleans_up(sample):
    warm = make(sample, "package", "BUILDER=local")
    assert warm.returncode == 0, warm.stderr + warm.stdout
    old = valid_zip(sample / "build.zip")
    # Without the noted choices a fresh dependency install asks about every package again, and
    # LAMBDA_KIT_FETCH=pip leaves every download to pip (the kit's own fetch is threads in-process).
    (sample / ".lambda-kit" / "wheelhouse" / pipchoices.FILE).unlink()
    proc = start(sample, "-B", env=kit_env(LAMBDA_KIT_FETCH="pip"))
    for line in proc.stdout:
        if "local build" in line:
            break
    for _ in range(3000):  # until pip runs
        if any(" -m pip " in p for p in leftovers(sample)) or proc.poll() is not None:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        proc.communicate()
        pytest.fail("the build ended before pip ran")
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0, output
    assert "interrupted (SIGTERM); the previous zip is untouched" in output
    assert valid_zip(sample / "build.zip") == old
    for _ in range(50):  # a killed process is gone once its parent (or init) has reaped it
        if not leftovers(sample):
            break
        time.sleep(0.1)
    assert leftovers(sample) == []
    # A run killed outright leaves its folder; the next run removes it.
    stale = sample / ".lambda-kit" / "tmp" / "run-999999999-x"
    (stale / "pip-target-x").mkdir(parents=True)
    app = sample / "lambdas" / "app.py"
    app.write_text(app.read_text() + "\n# changed\n")
    again = make(sample, "package", "BUILDER=local")
    assert again.returncode == 0, again.stderr
    assert not stale.exists()
    clean = make(sample, "clean")
    assert clean.returncode == 0 and not (sample / ".lambda-kit").exists() and not (sample / "build.zip").exists()
