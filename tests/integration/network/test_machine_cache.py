"""The machine's cache (KIT_CACHE): the helper's environment made once per machine and shared by
every checkout, verified before every use (a damaged or half-built one is rebuilt, never used),
pruned when unused; the dependency zips and the wheelhouse shared the same way, so a new checkout of
a lock built before on the machine is a code-only build that makes no environment and asks no Docker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import LAUNCHER, copy_sample, environment_leftovers, environments, machine_env, make, make_at_once

SETTING_UP = "lambda-kit: setting up the helper's environment in "
REBUILDING = "is damaged or half-built: rebuilding it"
DAY = 86400


def launch(cache: Path, home: Path, code: str) -> subprocess.CompletedProcess:
    """The launcher as make runs it, running `code` in the helper's environment."""
    env = machine_env(cache, LAMBDA_KIT_CACHE=str(cache), LAMBDA_KIT_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-S", str(LAUNCHER), "python", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def noting_docker(folder: Path, calls: Path) -> str:
    """A PATH whose `docker` only notes that it was called (and fails, as a dead engine would)."""
    folder.mkdir(parents=True)
    (folder / "docker").write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit 1\n')
    (folder / "docker").chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_two_checkouts_at_once_make_one_environment_and_a_new_checkout_builds_only_its_code(tmp_path):
    cache = tmp_path / "cache"
    projects = [copy_sample(tmp_path / f"checkout-{i}") for i in (1, 2)]
    results = make_at_once(projects, "package", "BUILDER=local", env=machine_env(cache))
    for out, err, code in results:
        assert code == 0, err + out
    # One made it; the other waited for its lock and used it (made once, not twice).
    assert sorted(err.count(SETTING_UP) for _, err, _ in results) == [0, 1], results
    (env,) = environments(cache)
    assert environment_leftovers(cache) == []
    assert (env / "lambda-kit-env.json").is_file()
    for project in projects:
        link = project / ".lambda-kit" / "venv"
        assert link.is_symlink() and Path(os.readlink(link)) == env
        assert not (project / ".lambda-kit" / "deps").exists()  # the dependency zips are the machine's
    zipped = (projects[0] / "build.zip").read_bytes()
    assert (projects[1] / "build.zip").read_bytes() == zipped

    # A new checkout of the same project (empty KIT_STATE, default builder): the dependencies come
    # from the machine's cache; no environment is made and Docker is never asked.
    third = copy_sample(tmp_path / "checkout-3")
    calls = tmp_path / "docker-calls"
    result = make(third, "package", env=machine_env(cache, PATH=noting_docker(tmp_path / "bin", calls)))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "lambda-kit: dependencies unchanged" in result.stdout, result.stdout
    assert SETTING_UP not in result.stderr and not calls.exists()
    assert environments(cache) == [env]
    assert (third / "build.zip").read_bytes() == zipped


def test_a_damaged_or_half_built_environment_is_rebuilt_not_used_and_unused_ones_are_pruned(tmp_path):
    cache, home = tmp_path / "cache", tmp_path / "home"
    probe = "import sh; print(sh.__file__)"
    first = launch(cache, home, probe)
    assert first.returncode == 0 and SETTING_UP in first.stderr, first.stderr
    (env,) = environments(cache)
    module = Path(first.stdout.strip())
    assert module.is_relative_to(env)
    again = launch(cache, home, probe)
    assert again.returncode == 0 and again.stderr == "", again.stderr  # verified, used as it is

    # A file of it changed: the environment is rebuilt, never run.
    module.write_text("raise SystemExit('the damaged environment was used')\n")
    damaged = launch(cache, home, probe)
    assert damaged.returncode == 0, damaged.stderr
    assert REBUILDING in damaged.stderr and SETTING_UP in damaged.stderr
    assert "damaged environment was used" not in module.read_text()

    # Half-built (a run killed before the marker, written last) or a marker that is not one.
    for spoil in (lambda marker: marker.unlink(), lambda marker: marker.write_text("{")):
        spoil(env / "lambda-kit-env.json")
        rebuilt = launch(cache, home, probe)
        assert rebuilt.returncode == 0 and REBUILDING in rebuilt.stderr, rebuilt.stderr
        assert environments(cache) == [env] and environment_leftovers(cache) == []

    # Environments no run has used for 30 days go (and what crashed runs left a day ago); one used
    # lately stays. Pruning runs when a run notes its use (at most hourly).
    now = time.time()
    old, recent = cache / "envs" / "py311-old", cache / "envs" / "py311-recent"
    crashed = cache / "envs" / f"{env.name}.4242.tmp"
    for folder, age in ((old, 31 * DAY), (recent, 2 * DAY)):
        (folder / "bin").mkdir(parents=True)
        (folder / "lambda-kit-last-use").touch()
        os.utime(folder / "lambda-kit-last-use", (now - age, now - age))
    crashed.mkdir()
    os.utime(crashed, (now - 2 * DAY, now - 2 * DAY))
    os.utime(env / "lambda-kit-last-use", (now - 7200, now - 7200))
    used = launch(cache, home, probe)
    assert used.returncode == 0, used.stderr
    assert not old.exists() and not crashed.exists() and recent.is_dir() and env.is_dir()
    assert time.time() - (env / "lambda-kit-last-use").stat().st_mtime < 600
