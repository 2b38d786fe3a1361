"""The kit's file chooser against pip itself on real locks from PyPI: for several runtimes and
architectures, `wheelfetch` takes the file the pinned pip's `download` takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, runtime_target, target_args
from lambda_kit.common import runtimes
from lambda_kit.lock import lockfile
from lambda_kit.net import httpget, netconfig
from lambda_kit.steps import wheelfetch


def lock_pins(lock_path: Path, version: str, arch: str) -> dict[str, tuple[str, tuple]]:
    plan = lockfile.install_plan(
        lockfile.load_pipfile_lock(lock_path), runtimes.target_environment(runtimes.lookup(version), arch)
    )
    return {p.name: (p.version.lstrip("="), tuple(p.hashes)) for p in plan.index}


def pip_report_choice(tmp: Path, pins: dict, args: list[str]) -> dict[str, str]:
    """pip's choice for real locks without downloading every wheel: a dry run's report."""
    requirements = tmp / "requirements.txt"
    requirements.write_text(
        "".join(f"{n}=={v} " + " ".join(f"--hash={h}" for h in hs) + "\n" for n, (v, hs) in pins.items())
    )
    report = tmp / "report.json"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    env.pop("PIP_FIND_LINKS", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--no-deps",
            "--require-hashes",
            "--target",
            str(tmp / "t"),
            "--report",
            str(report),
            "--quiet",
            *args,
            "-r",
            str(requirements),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    items = json.loads(report.read_text())["install"]
    return {
        item["metadata"]["name"].lower().replace("_", "-"): item["download_info"]["url"].rsplit("/", 1)[1]
        for item in items
    }


@pytest.mark.parametrize("version, arch", [("3.11", "x86_64"), ("3.12", "arm64"), ("3.13", "x86_64")])
def test_real_locks_same_choice_as_pip(tmp_path, version, arch):
    locks = [ROOT / "bench" / "projects" / s / "a" / "Pipfile.lock" for s in ("small", "large")]
    locks.append(ROOT / "Pipfile.lock")
    args = target_args(version, arch)
    client = httpget.Client(netconfig.BuildNetwork({}).http_settings())
    target = runtime_target(version, arch)
    compared = 0
    for lock in locks:
        pins = lock_pins(lock, version, arch)
        expected = pip_report_choice(tmp_path, pins, args)
        for name, (pinned, hashes) in pins.items():
            try:
                best = wheelfetch.choose(name, pinned, hashes, target, client, [netconfig.PYPI])
            except (wheelfetch.LeaveToPip, wheelfetch.Unavailable) as exc:
                pytest.fail(f"{name}: left to pip ({exc})")
            assert best.filename == expected[wheelfetch.canonicalize_name(name)], name
            compared += 1
    assert compared >= 20
