"""Where a cold build's time goes, step by step: `make profile-cold` (or run this file).

For each bench set and builder, a copy of the set with the kit is built from empty caches (the kit's
state folder and, for Docker, the kit's images and the builder cache), with every line of the
helper's output and of the build log stamped as it appears. The phases are read from the lines the
kit prints anyway (`lock verified`, `wheelhouse:`, `wheels unpacked`, `dependencies packed`, ...), so
profiling changes nothing in the build. Prints a markdown table (seconds), one column per build.

    python3 bench/profile.py [--sets small,large] [--builders docker,local] [--base-image IMAGE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PROJECTS, ROOT, copy_kit, use_lock  # noqa: E402  the bench's own helpers

# (phase, the line that ends it); a phase starts where the previous one ended.
DOCKER_PHASES = [
    ("start, lock checked on the host (pipenv)", "lambda-kit: lock verified"),
    ("docker probe, context staged", "lambda-kit: docker build "),
    ("image: base steps", "Step 6/"),
    ("image: tools layer (pip, packaging)", "Step 8/"),
    ("image: copy build inputs, start the step", ("lambda-kit: fetched ", "Collecting ")),
    ("download (the kit's chooser; pip for the rest)", "lambda-kit: wheelhouse:"),
    ("unpack wheels (kit's installer)", "wheels unpacked"),
    ("pack deps.zip (wheels' own streams; threads)", "lambda-kit: dependencies packed"),
    ("layer commit, label", "lambda-kit: image built"),
    ("docker create, cp, rm", "lambda-kit: build output copied out"),
    ("code added, audit", "lambda-kit: audit passed"),
    ("publish", "lambda-kit: wrote "),
]
LOCAL_PHASES = [
    ("start (pipenv's lock check starts beside the build)", "lambda-kit: local build"),
    ("download (the kit's chooser; pip for the rest)", "lambda-kit: wheelhouse:"),
    ("unpack wheels (kit's installer)", "wheels unpacked"),
    ("pack deps.zip (wheels' own streams; threads)", "lambda-kit: dependencies packed"),
    ("tree removed, the lock check's result", "lambda-kit: lock verified"),
    ("code added, audit", "lambda-kit: audit passed"),
    ("publish", "lambda-kit: wrote "),
]


def follow(path: Path, lines: list, stop: threading.Event, started: float) -> None:
    """Stamp each line of a growing file (the build log) as it appears."""
    while not path.exists() and not stop.is_set():
        time.sleep(0.01)
    with open(path, errors="replace") as f:
        while True:
            line = f.readline()
            if line:
                lines.append((time.perf_counter() - started, line.rstrip("\n")))
            elif stop.is_set():
                return
            else:
                time.sleep(0.005)


def cold_build(folder: Path, builder: str, base_image: str, runtime: str) -> tuple[float, list]:
    # Cold as make bench means it: the kit's caches gone (dependency zips, wheelhouse, pip's cache,
    # audit facts), the helper's own environment ready (as the peers' tools are).
    state = folder / ".lambda-kit"
    for name in ("deps", "wheelhouse", "pip-cache"):
        shutil.rmtree(state / name, ignore_errors=True)
    for name in ("audit-native.json", "audit-needed.json"):
        (state / name).unlink(missing_ok=True)
    (folder / "build.zip").unlink(missing_ok=True)
    if builder == "docker":
        ids = subprocess.run(
            ["docker", "images", "-aq", "--filter", "label=org.lambda-kit.kit=lambda-kit"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "image", "rm", "--force", *sorted(set(ids))], capture_output=True)
        subprocess.run(["docker", "builder", "prune", "--all", "--force"], capture_output=True)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0"),
        "LAMBDA_KIT_VENV": sys.prefix,
    }
    argv = [
        "make",
        "--no-print-directory",
        "package",
        f"PYTHON_VERSION={runtime}",
        f"BASE_IMAGE={base_image}",
        f"BUILDER={builder}",
    ]
    lines: list = []
    stop = threading.Event()
    started = time.perf_counter()
    log = threading.Thread(target=follow, args=(folder / ".lambda-kit" / "build.log", lines, stop, started))
    log.start()
    with subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))
    total = time.perf_counter() - started
    stop.set()
    log.join()
    if p.returncode != 0:
        raise SystemExit("profile: the build failed:\n" + "\n".join(line for _, line in lines[-15:]))
    return total, sorted(lines, key=lambda item: item[0])


def phases(lines: list, plan: list) -> list[tuple[str, float]]:
    out, previous = [], 0.0
    for name, markers in plan:
        markers = (markers,) if isinstance(markers, str) else markers
        when = next((t for t, line in lines if any(m in line for m in markers) and t >= previous), None)
        if when is None:
            out.append((name, float("nan")))
            continue
        out.append((name, when - previous))
        previous = when
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="small,large")
    parser.add_argument("--builders", default="docker,local")
    parser.add_argument("--base-image", default=os.environ.get("BASE_IMAGE", "lambda-kit-test/base:bookworm-3"))
    parser.add_argument("--runtime", default="3.11")
    args = parser.parse_args()
    work = ROOT / "bench" / "work" / "profile"
    columns, totals = {}, {}
    for set_name in args.sets.split(","):
        folder = work / set_name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copytree(PROJECTS / set_name / "lambdas", folder / "lambdas")
        use_lock(folder, set_name, "a")
        copy_kit(ROOT, folder)
        for builder in args.builders.split(","):
            total, lines = cold_build(folder, builder, args.base_image, args.runtime)
            plan = DOCKER_PHASES if builder == "docker" else LOCAL_PHASES
            columns[(set_name, builder)] = dict(phases(lines, plan))
            totals[(set_name, builder)] = total
            print(f"profile: {set_name} {builder} cold {total:.2f}s", file=sys.stderr, flush=True)
    names = [name for name, _ in DOCKER_PHASES] + [n for n, _ in LOCAL_PHASES if n not in dict(DOCKER_PHASES)]
    keys = list(columns)
    print("| phase | " + " | ".join(f"{s} {b}" for s, b in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name in names:
        cells = [columns[k].get(name) for k in keys]
        if all(c is None for c in cells):
            continue
        print(f"| {name} | " + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + " |")
    print("| **total (make package, wall)** | " + " | ".join(f"**{totals[k]:.2f}**" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
