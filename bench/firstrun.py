"""make bench's first-run cases: what a fresh CI agent and a new checkout pay.

`fresh agent`: a new checkout, an empty KIT_STATE and an empty user cache (XDG_CACHE_HOME: the
kit's machine cache with its helper environment, pip's cache); every flow's tool set-up counted: the
kit's launcher makes the helper's environment, the uv flow installs uv and pipenv into a new venv
(venv, then pip, hash-checked), the article's flow sets up its tools in its own `docker build`
(pipenv installed in the image). Each run starts the Docker flows without the bench's images (the
article's image, the kit checkout's images, removed by tag and label only: the engine is shared);
the kit's Docker build starts from a base image of its own, so no other user's image serves its steps.

`new checkout`: the machine cache warm from a build of the same lock in another checkout, a new
folder with an empty KIT_STATE; its first `make package` beside the code-only rebuild of the warm
checkout, in the same runs. Done when it costs at most the code-only time plus 0.5 s.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from lambda_kit.code.kitfiles import copy_kit
from peers import UvFlow, install_tools

FIRST_RUN_CASES = ("fresh agent", "new checkout")
# What the bench's own run (make bench, inside the kit's environment) set for itself, not for a new agent.
INHERITED = (
    "LAMBDA_KIT_VENV",
    "LAMBDA_KIT_EXTRAS",
    "LAMBDA_KIT_HOME",
    "LAMBDA_KIT_CACHE",
    "KIT_CACHE",
    "KIT_STATE",
    "PYTHONPYCACHEPREFIX",
    "PYTHONPATH",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    "PIP_CACHE_DIR",
    "UV_CACHE_DIR",
)
SETTING_UP = "lambda-kit: setting up the helper's environment"


def agent_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    return {**env, "XDG_CACHE_HOME": str(cache), "DOCKER_BUILDKIT": "0"}


def make(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["make", "--no-print-directory", *args], cwd=folder, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench: make {' '.join(args)} failed in {folder} (exit {result.returncode}):\n{tail}")
    return result


class FirstRuns:
    def __init__(
        self,
        work: Path,
        set_name: str,
        projects: Path,
        settings: list[str],
        article,
        runtime: str,
        arch: str,
        ca_bundle: str,
    ) -> None:
        self.work = work / set_name / "first-runs"
        self.set_name, self.projects, self.settings = set_name, projects, settings
        self.article, self.runtime, self.arch, self.ca_bundle = article, runtime, arch, ca_bundle

    def checkout(self, name: str, kit: bool = True) -> Path:
        folder = self.work / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copytree(self.projects / self.set_name / "lambdas", folder / "lambdas")
        for lock in ("Pipfile", "Pipfile.lock"):
            shutil.copyfile(self.projects / self.set_name / "a" / lock, folder / lock)
        return copy_kit(Path(__file__).resolve().parent.parent, folder) if kit else folder

    def fresh_cache(self, name: str) -> Path:
        cache = self.work / name
        shutil.rmtree(cache, ignore_errors=True)
        return cache

    def kit(self, builder: str) -> tuple[float, str]:
        """A fresh agent's `make package`: seconds, and what the Docker build took from the engine's cache.
        The Docker build starts from a base image of its own (the base plus a label: another image id),
        so no image of the shared engine's other users can serve its steps, the tools layer included."""
        folder = self.checkout(f"kit-{builder}")
        env = agent_env(self.fresh_cache(f"cache-kit-{builder}"))
        settings = self.settings
        if builder == "docker":
            settings = [*settings, f"BASE_IMAGE={self.unique_base()}"]
        started = time.perf_counter()
        result = make(folder, env, "package", *settings, f"BUILDER={builder}")
        seconds = time.perf_counter() - started
        if SETTING_UP not in result.stderr:
            raise SystemExit(f"bench: the fresh agent did not make the helper's environment:\n{result.stderr}")
        log = (folder / ".lambda-kit" / "build.log").read_text(errors="replace")
        cached = log.count("Using cache")
        make(folder, env, "clean", *settings)  # this checkout's images go, no other's
        if builder == "docker":
            subprocess.run(["docker", "image", "rm", "--force", settings[-1].split("=", 1)[1]], capture_output=True)
        return seconds, f"{cached} cached steps" if cached else ""

    def unique_base(self) -> str:
        base = next(s.split("=", 1)[1] for s in self.settings if s.startswith("BASE_IMAGE="))
        tag = f"lambda-kit-bench/fresh-base:{os.getpid()}-{time.time_ns()}"
        built = subprocess.run(
            ["docker", "build", "-t", tag, "-"],
            input=f"FROM {base}\nLABEL lambda-kit-bench.run={tag}\n",
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        if built.returncode != 0:
            raise SystemExit(f"bench: cannot make a base image of its own:\n{built.stderr}")
        return tag

    def uv(self) -> float:
        folder = self.checkout("uv", kit=False)
        env = agent_env(self.fresh_cache("cache-uv"))
        started = time.perf_counter()
        tools = install_tools(folder / "tools", env)
        UvFlow(folder, tools, self.runtime, self.arch, self.ca_bundle).build()
        return time.perf_counter() - started

    def article_flow(self) -> float:
        # The bench's article images (both sets share their first layers), never the base: its
        # pipenv step and everything after run again.
        tags = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "lambda-kit-bench/article-*"],
            capture_output=True,
            text=True,
        ).stdout.split()
        tags = [t for t in tags if not t.startswith("lambda-kit-bench/article-base:")]
        if tags:
            subprocess.run(["docker", "image", "rm", "--force", *tags], capture_output=True)
        started = time.perf_counter()
        self.article.build()
        return time.perf_counter() - started

    def fresh_agents(self, runs: int) -> dict[str, list]:
        flows = {
            "article": self.article_flow,
            "uv": self.uv,
            "kit (Docker)": lambda: self.kit("docker"),
            "kit (local)": lambda: self.kit("local"),
        }
        times: dict[str, list] = {name: [] for name in flows}
        notes: list[str] = []
        order = list(flows)
        for n in range(runs):
            for name in order[n % 4 :] + order[: n % 4]:
                value = flows[name]()
                if isinstance(value, tuple):
                    value, note = value
                    notes += [note] if note else []
                times[name].append(value)
            print(
                f"bench: {self.set_name} fresh agent run {n + 1}/{runs}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                flush=True,
            )
        times["notes"] = notes
        return times

    def new_checkouts(self, runs: int) -> dict[str, dict[str, list[float]]]:
        """Per builder: the warm checkout's code-only rebuild and a new checkout's first build, each run."""
        out = {}
        for builder in ("docker", "local"):
            env = agent_env(self.fresh_cache(f"cache-new-{builder}"))
            warm = self.checkout(f"warm-{builder}")
            make(warm, env, "package", *self.settings, f"BUILDER={builder}")  # untimed: fills the machine cache
            times = {"code-only": [], "new checkout": []}
            for n in range(runs):
                app = warm / "lambdas" / "app.py"
                app.write_text(app.read_text() + f"# bench edit {n}\n")
                started = time.perf_counter()
                make(warm, env, "package", *self.settings, f"BUILDER={builder}")
                times["code-only"].append(time.perf_counter() - started)
                new = self.checkout(f"new-{builder}")
                started = time.perf_counter()
                result = make(new, env, "package", *self.settings, f"BUILDER={builder}")
                times["new checkout"].append(time.perf_counter() - started)
                if "dependencies unchanged" not in result.stdout or SETTING_UP in result.stderr:
                    raise SystemExit(
                        f"bench: the new checkout built more than its code:\n{result.stdout}{result.stderr}"
                    )
            make(warm, env, "clean", *self.settings)
            out[builder] = times
            print(
                f"bench: {self.set_name} new checkout ({builder}): {summary(times['new checkout'])}, "
                f"code-only {summary(times['code-only'])}",
                flush=True,
            )
        return out


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def table(intro: str, *columns: str) -> list[str]:
    """A paragraph, then a markdown table's head."""
    return ["", intro, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def lines(fresh: dict[str, dict], new: dict[str, dict], runs: int, load: str) -> list[str]:
    out = [
        "# make bench: first runs (fresh agent, new checkout)",
        "",
        f"{runs} runs per case; seconds, median (min-max), wall clock. {load}",
    ]
    if fresh:
        out += table(
            "`fresh agent`: new checkout, empty KIT_STATE, empty user cache; tool set-up counted on every "
            "side (the kit: its helper environment; the uv flow: a venv with uv and pipenv; the article: "
            "pipenv in its `docker build`). Targets: kit Docker / article at most 0.4, kit local / uv at most 0.6.",
            "set",
            "article",
            "uv flow",
            "kit (Docker)",
            "kit (local)",
            "Docker / article",
            "local / uv",
        )
        for set_name, t in fresh.items():
            m = {k: statistics.median(v) for k, v in t.items() if k != "notes"}
            out.append(
                f"| {set_name} | {summary(t['article'])} | {summary(t['uv'])} | {summary(t['kit (Docker)'])} | "
                f"{summary(t['kit (local)'])} | {m['kit (Docker)'] / m['article']:.3f} | "
                f"{m['kit (local)'] / m['uv']:.3f} |"
            )
        notes = {s: ", ".join(t["notes"]) for s, t in fresh.items() if t["notes"]}
        if notes:
            out += [
                "",
                "The kit's Docker builds took steps from the engine's layer cache: "
                + "; ".join(f"{s}: {n}" for s, n in notes.items()),
            ]
    if new:
        out += table(
            "`new checkout`: machine cache warm from another checkout of the same lock, new folder, empty "
            "KIT_STATE; its first `make package` beside the warm checkout's code-only rebuild in the same "
            "runs. Target: at most code-only + 0.5 s, no environment made, no Docker build.",
            "set",
            "builder",
            "new checkout",
            "code-only",
            "difference of medians",
            "target met",
        )
        for set_name, builders in new.items():
            for builder, t in builders.items():
                diff = statistics.median(t["new checkout"]) - statistics.median(t["code-only"])
                out.append(
                    f"| {set_name} | {builder} | {summary(t['new checkout'])} | {summary(t['code-only'])} | "
                    f"{diff:+.2f} | {'yes' if diff <= 0.5 else 'no'} |"
                )
    return out
