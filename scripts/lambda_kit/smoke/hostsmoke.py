"""`make smoke` without Docker: when no engine answers and the host's Python is the runtime's version
(and its architecture the target's), the zip is run on the host instead of in the runtime image.

    1. awslambdaric (scripts/smoke-requirements.txt, pinned and hash-checked) into the machine's cache,
       once per Python: <cache>/smoke-ric/<key>, made under a file lock and renamed into place
    2. the zip and the event into a temporary folder; smoke_runner.py supervises as in the image: the
       zip unpacked with the same bounds into a temporary task folder, then the handler loaded by
       awslambdaric's own code in a separate `python -I -S` with only that folder on its path (no
       site-packages of the host, no runtime packages), its result on a pipe, the report in a file
    3. the report checked as report.read_report checks the image's

What it cannot be: the Lambda image (its glibc, its /var/runtime packages) or its sandbox user: the
handler runs as the user who ran make, which the line before the result says.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from lambda_kit.common import reporter, runtimes
from lambda_kit.common.errors import KitError
from lambda_kit.invoke import smoke_runner
from lambda_kit.plan import compiling
from lambda_kit.smoke.report import read_report

RUNNER = Path(smoke_runner.__file__)
SCRIPTS = Path(__file__).resolve().parents[2]  # scripts/: the kit's package and its pins
REQUIREMENTS = SCRIPTS / "smoke-requirements.txt"


def can_run(runtime: runtimes.Runtime, arch: str) -> bool:
    """This host runs the runtime's Python version on the target's architecture."""
    return compiling.host_runs(runtime.version) and platform.machine() == runtimes.ARCHITECTURES[arch][1]


def base_python() -> str:
    """The host's interpreter itself, not the helper's environment (whose packages the handler must not see)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def runtime_interface(cache: Path) -> Path:
    """awslambdaric for this Python, installed once per machine by the helper's pinned pip."""
    digest = hashlib.sha256(f"{sys.version}\0{os.path.realpath(base_python())}\0".encode())
    digest.update(REQUIREMENTS.read_bytes())
    folder = cache / "smoke-ric" / f"py{sys.version_info[0]}{sys.version_info[1]}-{digest.hexdigest()[:20]}"
    done = folder / ".lambda-kit-complete"
    if done.is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{folder}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # half-made by a run that died
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            installed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--require-hashes",
                    "--only-binary=:all:",
                    "--no-compile",
                    "--target",
                    str(tmp),
                    "-r",
                    str(REQUIREMENTS),
                ],
                capture_output=True,
                text=True,
            )
            if installed.returncode != 0:
                tail = " / ".join((installed.stdout + installed.stderr).strip().splitlines()[-2:])
                raise KitError(
                    "cannot install awslambdaric for a smoke run on the host",
                    tail[-300:],
                    hint="check access to PyPI (PIP_INDEX_URL / PIP_CERT), or start a Docker engine",
                )
            shutil.rmtree(tmp / "bin", ignore_errors=True)
            (tmp / done.name).write_text("")
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def smoke_on_host(s, why_not: str, say: Callable[[str], None]) -> dict:
    """The zip run on the host (see the module's steps); the runner's report, checked."""
    runtime = runtimes.lookup(s.runtime)
    ric = runtime_interface(s.cache_dir or s.state_dir)
    say(
        reporter.line(
            f"no Docker engine ({why_not}): running the handler on the host ({runtime.name}, as "
            f"{getpass.getuser()}), not in the Lambda image; only the zip on its path"
        )
    )
    with tempfile.TemporaryDirectory(prefix="smoke-host-") as tmp:
        work, task, report_dir = Path(tmp, "work"), Path(tmp, "task"), Path(tmp, "report")
        work.mkdir()
        task.mkdir()
        shutil.copyfile(s.zip, work / "function.zip")
        (work / "event.json").write_bytes(s.event.read_bytes() if s.event else b"{}")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "LAMBDA_KIT_FUNCTION_NAME": s.zip.stem,
            "LAMBDA_KIT_SMOKE_WORK": str(work),
            "LAMBDA_KIT_SMOKE_TASK_ROOT": str(task.resolve()),
            "LAMBDA_KIT_SMOKE_RIC": str(ric),
            "LAMBDA_KIT_SMOKE_REPORT_DIR": str(report_dir),
            "PYTHONPATH": str(SCRIPTS),
        }  # the supervisor's zip reader; the handler's child runs -I
        try:
            done = subprocess.run(
                [base_python(), "-S", str(RUNNER), s.handler, str(s.timeout)],
                env=env,
                cwd=tmp,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=s.timeout + 120,
            )
        except subprocess.TimeoutExpired:
            raise KitError("the smoke run on the host did not end", f"{s.timeout + 120:.0f}s") from None
        for line in done.stdout.splitlines():
            say(line)  # the handler's own logs: never the report
        if not (report_dir / "report.json").is_file():
            tail = " | ".join(done.stdout.splitlines()[-3:])
            raise KitError("the smoke run on the host gave no report", tail, hint="run with LAMBDA_KIT_DEBUG=1")
        return read_report(report_dir / "report.json")
