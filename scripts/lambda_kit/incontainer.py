"""The build steps that run inside the build image (see the Dockerfile).

    python -m lambda_kit.incontainer deps   # verify the lock, install [packages] into deps/
    python -m lambda_kit.incontainer zip    # write out/build.zip from deps/ and src/

Failures print `lambda-kit: error: ...` and `hint: ...`, which the host helper lifts out of the
build log, and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import lockfile, netconfig, zipwriter

ROOT = Path("/opt/lambda-kit")
TOOLS_PYTHON = ROOT / "tools" / "bin" / "python"
PIPENV = ROOT / "tools" / "bin" / "pipenv"
PIP_CACHE = "/root/.cache/pip"


class StepError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def say(message: str) -> None:
    print(f"lambda-kit: {message}", flush=True)


def verify_lock(project: Path) -> None:
    """`pipenv verify`: the lock must match the Pipfile; the lock is never re-resolved here."""
    env = {
        **os.environ,
        "PIPENV_PIPFILE": str(project / "Pipfile"),
        "PIPENV_IGNORE_VIRTUALENVS": "1",
        "PIPENV_NOSPIN": "1",
        "PIPENV_YES": "1",
        "NO_COLOR": "1",
    }
    result = subprocess.run([str(PIPENV), "verify"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip().splitlines()
        print("\n".join(detail[-5:]), file=sys.stderr)
        raise StepError(
            "Pipfile.lock is out of date: its hash no longer matches the Pipfile (pipenv verify)",
            "run `pipenv lock` and commit the new Pipfile.lock",
        )
    say("lock verified against Pipfile (pipenv verify)")


def pip_install(args: list[str], target: Path, lock_sources: list[str]) -> None:
    argv = [
        str(TOOLS_PYTHON), "-m", "pip", "install",
        "--target", str(target), "--no-compile", "--no-deps", "--no-input",
        "--no-warn-script-location", "--progress-bar", "off",
        *args,
    ]  # fmt: skip
    # BuildKit mounts a download cache here; without one, keep downloads out of the layer.
    if not os.path.ismount(PIP_CACHE):
        argv.append("--no-cache-dir")
    env, cleanup = netconfig.pip_environment(lock_sources)
    lines: list[str] = []
    try:
        with subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace") as pip:  # fmt: skip
            for line in pip.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
        code = pip.returncode
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)
    if code != 0:
        raise pip_failure(code, lines)


def pip_failure(code: int, lines: list[str]) -> StepError:
    """One line for what pip said went wrong; the common causes get their own hint."""
    text = "\n".join(lines)
    if "DO NOT MATCH THE HASHES" in text:
        start = next(i for i, line in enumerate(lines) if "DO NOT MATCH THE HASHES" in line)
        culprits = [line.strip().split(" from ")[0].rstrip(":") for line in lines[start + 1:]
                    if line.startswith("    ") and not line.startswith("        ")]  # fmt: skip
        expected = next((l.split()[-1] for l in lines[start:] if l.strip().startswith("Expected sha256")), "?")
        got = next((l.split()[-1] for l in lines[start:] if l.strip().startswith("Got")), "?")
        return StepError(
            f"hash mismatch: the download of {', '.join(culprits) or 'a package'} does not match Pipfile.lock "
            f"(lock: sha256 {expected[:16]}..., download: {got[:16]}...)",
            "the file differs from what `pipenv lock` recorded: re-lock only if you trust the new file",
        )
    errors = [line for line in lines if line.startswith("ERROR:")]
    detail = errors[-1][len("ERROR:"):].strip() if errors else f"exit {code}"
    return StepError(f"pip install failed: {detail}", "pip's full output is in the build log")


def move_into(source: Path, target: Path) -> None:
    """Merge a second install folder into the first; two packages writing one path is an error."""
    for item in sorted(source.iterdir()):
        dest = target / item.name
        if dest.exists():
            if item.is_dir() and dest.is_dir() and not item.name.endswith(".dist-info"):
                move_into(item, dest)  # namespace packages share folders
                continue
            raise StepError(f"two dependencies install {dest.relative_to(target)}", "check the lock for duplicates")
        shutil.move(str(item), str(dest))


def check_interpreter(expected: str) -> None:
    """The base image must run the runtime's Python: markers and wheels are chosen for it."""
    running = "%d.%d" % sys.version_info[:2]
    if expected and running != expected:
        raise StepError(
            f"the base image runs Python {running}, but the runtime is python{expected}",
            "set BASE_IMAGE to a build image for that runtime, or PYTHON_VERSION to the image's",
        )


def install_dependencies(project: Path, paths_map: Path, target: Path) -> None:
    check_interpreter(os.environ.get("PYTHON_VERSION", ""))
    verify_lock(project)
    lock = lockfile.load(project / "Pipfile.lock")
    plan = lockfile.plan(lock)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, marker in plan.skipped:
        say(f"skipped {name}: marker {marker!r} is false for this runtime")
    if plan.index:
        requirements = ROOT / "requirements.txt"
        requirements.write_text(plan.requirements_text(), encoding="utf-8")
        pip_install(["--require-hashes", "-r", str(requirements)], target, plan.index_urls)
    others = []
    if plan.local:
        mapping = json.loads(paths_map.read_text(encoding="utf-8")) if paths_map.is_file() else {}
        for package in plan.local:
            staged = mapping.get(package.path)
            if not staged:
                raise StepError(f"local path dependency {package.name} was not staged ({package.path})")
            others.append(staged)
    others += [p.url for p in plan.urls]
    if others:
        # Not hash-checkable by pip: installed apart, as regular packages, never editable.
        extra = target.with_name(target.name + "-local")
        shutil.rmtree(extra, ignore_errors=True)
        pip_install(others, extra, plan.index_urls)
        move_into(extra, target)
        shutil.rmtree(extra)
    # Console scripts point at this build's interpreter: useless on Lambda.
    shutil.rmtree(target / "bin", ignore_errors=True)
    say(f"installed {len(plan.index)} hash-checked and {len(others)} local/VCS packages from [packages]")


def build_zip(deps: Path, src: Path, out: Path) -> None:
    date_time = zipwriter.zip_date_time(os.environ.get("SOURCE_DATE_EPOCH"))
    entries = zipwriter.merge(
        ("the dependencies", zipwriter.collect(deps)),
        ("the source folder", zipwriter.collect(src, skip=lambda n: n in ("Pipfile", "Pipfile.lock"))),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    zipwriter.write_zip(entries, out, date_time)
    files = sum(1 for e in entries if not e.is_dir)
    say(f"zip written: {files} files, {out.stat().st_size} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lambda_kit.incontainer")
    sub = parser.add_subparsers(dest="step", required=True)
    deps = sub.add_parser("deps")
    deps.add_argument("--project", type=Path, default=ROOT / "project")
    deps.add_argument("--paths-map", type=Path, default=ROOT / "paths" / "map.json")
    deps.add_argument("--target", type=Path, default=ROOT / "deps")
    zip_ = sub.add_parser("zip")
    zip_.add_argument("--deps", type=Path, default=ROOT / "deps")
    zip_.add_argument("--src", type=Path, default=ROOT / "src")
    zip_.add_argument("--out", type=Path, default=ROOT / "out" / "build.zip")
    args = parser.parse_args(argv)
    try:
        if args.step == "deps":
            install_dependencies(args.project, args.paths_map, args.target)
        else:
            build_zip(args.deps, args.src, args.out)
    except (StepError, lockfile.LockError, zipwriter.ZipBuildError) as exc:
        print(f"lambda-kit: error: {exc}", file=sys.stderr, flush=True)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
