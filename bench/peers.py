"""The uv flow, make bench's second peer: what a user would script instead of the kit, without Docker.

    pipenv requirements --hash > requirements.txt
    uv pip install --target package --python-platform <platform> --python-version 3.X \\
        --only-binary :all: --require-hashes --no-deps -r requirements.txt
    cp -r lambdas/. package/ && (cd package && zip -qr -X ../build.zip .)

Its tools (uv pinned in bench/uv-requirements.txt, pipenv pinned by the kit's own
scripts/requirements.txt, all hash-checked) go into a venv under bench/work, installed by
pip with the environment's own configuration (PIP_INDEX_URL, PIP_CERT, pip.conf): no index is named
here. uv takes the HTTPS proxy's CA bundle from SSL_CERT_FILE (uv's documented way for a custom
bundle); the index is the lock's own source, which `pipenv requirements` prints as `-i`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lambda_kit.common import runtimes  # read only: the runtime's glibc

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOOL_REQUIREMENTS = (ROOT / "scripts" / "requirements.txt", BENCH / "uv-requirements.txt")
UV_VERSION = re.search(r"^uv==(\S+)", TOOL_REQUIREMENTS[1].read_text(), re.MULTILINE).group(1)
# uv's --python-platform Linux targets: manylinux_2_17, then 2_28 and up; nothing in between.
UV_MANYLINUX_MINORS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)


def uv_platform(runtime: str, arch: str) -> str:
    """The newest uv platform a runtime's glibc can load. For the Amazon Linux 2 runtimes (glibc
    2.26) that is manylinux_2_17: uv has no 2_26, so wheels tagged 2_24 or 2_26 are out of its reach
    (pip's --platform takes them); 2_28 would pick wheels that fail to load there."""
    glibc = runtimes.lookup(runtime).glibc
    minor = max(m for m in UV_MANYLINUX_MINORS if (2, m) <= glibc)
    return f"{runtimes.ARCHITECTURES[arch][1]}-manylinux_2_{minor}"


def run(argv, cwd=None, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench: `{' '.join(map(str, argv[:4]))}` failed (exit {result.returncode}):\n{tail}")
    return result


def peer_tools(work: Path) -> Path:
    """The uv flow's venv (uv and pipenv), made once per change of the pins; its bin folder."""
    venv = work / "peer-tools"
    digest = hashlib.sha256(sys.version.encode())
    for path in TOOL_REQUIREMENTS:
        digest.update(path.read_bytes())
    stamp = venv / "bench.stamp"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return venv / "bin"
    print("bench: installing the uv flow's tools (uv, pipenv; pinned, hash-checked)", flush=True)
    install_tools(venv)
    stamp.write_text(digest.hexdigest())
    return venv / "bin"


def install_tools(venv: Path, env: dict[str, str] | None = None) -> Path:
    """uv and pipenv into a new venv, as a user sets them up (venv, then pip); its bin folder."""
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", venv], env=env)
    files = [arg for path in TOOL_REQUIREMENTS for arg in ("-r", path)]
    run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            *files,
        ],
        env=env,
    )
    return venv / "bin"


class UvFlow:
    name = "uv"

    def __init__(self, folder: Path, tools: Path, runtime: str, arch: str, ca_bundle: str) -> None:
        self.folder = folder
        self.zip = folder / "build.zip"
        self.cache = folder / "uv-cache"
        self.tools = tools
        self.platform = uv_platform(runtime, arch)
        self.runtime = runtimes.lookup(runtime).version
        self.uv_env = {
            **os.environ,
            "UV_CACHE_DIR": str(self.cache),
            "SSL_CERT_FILE": ca_bundle,
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
        }
        # The bench runs inside the kit's venv: pipenv must not take it for the project's.
        self.pipenv_env = {
            **os.environ,
            "PIPENV_VERBOSITY": "-1",
            "PIPENV_IGNORE_VIRTUALENVS": "1",
            "PIPENV_YES": "1",
            "PIPENV_NOSPIN": "1",
        }
        for name in ("VIRTUAL_ENV",):
            self.pipenv_env.pop(name, None)

    def build(self) -> None:
        """The whole script, every time: it has no way to know what changed."""
        requirements = self.folder / "requirements.txt"
        exported = run([self.tools / "pipenv", "requirements", "--hash"], cwd=self.folder, env=self.pipenv_env)
        requirements.write_text(exported.stdout)
        target = self.folder / "package"
        shutil.rmtree(target, ignore_errors=True)
        index = os.environ.get("PIP_INDEX_URL")  # a mirror replacing the lock's index, as pip would use it
        run(
            [
                self.tools / "uv",
                "pip",
                "install",
                "--target",
                target,
                "--python",
                sys.executable,
                "--python-platform",
                self.platform,
                "--python-version",
                self.runtime,
                "--only-binary",
                ":all:",
                "--require-hashes",
                "--no-deps",
                "--no-progress",
                *(["--default-index", index] if index else []),
                "-r",
                requirements,
            ],
            cwd=self.folder,
            env=self.uv_env,
        )
        (target / ".lock").unlink(missing_ok=True)  # uv's lock file for the target folder: not for the zip
        shutil.copytree(self.folder / "lambdas", target, dirs_exist_ok=True)
        self.zip.unlink(missing_ok=True)
        run(["zip", "-qr", "-X", self.zip, "."], cwd=target)

    def forget(self) -> None:
        self.zip.unlink(missing_ok=True)
        shutil.rmtree(self.cache, ignore_errors=True)
