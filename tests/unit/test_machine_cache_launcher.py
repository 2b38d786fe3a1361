"""The launcher and the machine's cache (KIT_CACHE): an environment that cannot be made (a dead
index, a cache folder that cannot be created) is one line and leaves nothing half made."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import LAUNCHER, environment_leftovers, environments, machine_env


def test_an_environment_that_cannot_be_made_is_one_line_and_leaves_nothing_half_made(tmp_path):
    cache, home = tmp_path / "cache", tmp_path / "home"
    dead_index = {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_FIND_LINKS": "",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "5",
    }
    env = {**machine_env(cache, LAMBDA_KIT_CACHE=str(cache), LAMBDA_KIT_HOME=str(home)), **dead_index}
    failed = subprocess.run(
        [sys.executable, "-S", str(LAUNCHER), "python", "-c", "pass"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.startswith("lambda-kit: error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "lambda-kit: error: cannot install the helper's dependencies from requirements.txt: "
    ), failed.stderr
    assert "hint: check access to PyPI" in failed.stderr and "Traceback" not in failed.stderr
    assert environments(cache) == [] and environment_leftovers(cache) == []  # the next run starts clean

    # A cache folder that cannot be made: one line naming it and the setting.
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    env = machine_env(blocked / "cache", LAMBDA_KIT_CACHE=str(blocked / "cache"), LAMBDA_KIT_HOME=str(home))
    refused = subprocess.run(
        [sys.executable, "-S", str(LAUNCHER), "python", "-c", "pass"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(
        f"lambda-kit: error: cannot create the kit's cache folder ({blocked / 'cache'}/envs: "
    )
    assert "hint: set KIT_CACHE to a writable folder" in refused.stderr
