"""What every tool the kit starts shares, in the image and on the host: each runs in its own process
group, so stopping it (or an interrupt) ends its children too. Standard library only (the image runs
it); the host's runner for docker and the other commands (builders/runner.py, on `sh`) is separate."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path


def start_group(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """A tool started in a process group of its own, its output (stderr merged) read as text."""
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        cwd=cwd,
    )


def stop_group(tool: subprocess.Popen) -> None:
    """SIGTERM to the tool's whole process group, a moment for the tool to exit, then SIGKILL to
    whatever of the group is left (pipenv's and pip's own children too)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(tool.pid, sig)
        except ProcessLookupError:
            break
        try:
            tool.wait(3.0)
        except subprocess.TimeoutExpired:
            continue
    tool.wait()


def output_of(check, log: Callable[[str], object] | None) -> str:
    """A started check's whole output, once its process ends (stopped, with its group, when the wait
    is interrupted), also given to `log`."""
    try:
        output = check.process.communicate()[0]
    except BaseException:
        check.stop()
        raise
    if log is not None:
        log(output)
    return output
