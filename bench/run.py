"""make bench: lambda-kit against its peers, the article's flow and the uv flow, on one machine in one run.

For two dependency sets (small: requests, pydantic, pyyaml; large: pandas, boto3) and four cases
(cold build cache, no-op, code-only change, lock change), each flow is timed RUNS times and the
medians, min-max and the ratios kit/article and kit/uv are written to bench/results.md with the
machine's description. The `local cold` case times `make package BUILDER=local` from an empty
KIT_STATE (no pip cache, no local tools) against the uv flow from an empty uv cache, back to back.
The `init` case builds the kit's zip as default, COMPILE=1 and SLIM=1 COMPILE=1 and runs each RUNS
times with `make smoke` in the base image: init time (the handler's import) and zip size. `--cases`
runs some of them. A benchmark, not a test: nothing here asserts.

The article's flow is its Dockerfile as published and its four docker commands, adapted only in the
base image (the same stand-in image the kit uses, plus a venv on PATH, the proxy's CA bundle and
UTF-8 mode, which the article got from `yum` and `get-pip.py`) and an old pipenv that still has
`lock -r`, which the article needs. The uv flow (bench/peers.py) is what a user would script
instead of the kit without Docker: `pipenv requirements --hash`, `uv pip install --target` for the
runtime's platform with hashes, the code copied in, `zip -qr -X`; it has no incremental mode, so its
no-op and code-only cases are the whole script again with a warm uv cache.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

from firstrun import FIRST_RUN_CASES, FirstRuns  # bench/, this script's folder
from firstrun import lines as first_run_lines
from lambda_kit.code.kitfiles import copy_kit  # the launcher puts scripts/ on sys.path
from lambda_kit.common import runtimes
from lambda_kit.dependencies import cachesign
from peers import UV_VERSION, UvFlow, peer_tools, uv_platform

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ROOT / "bench" / "projects"
ALL_CASES = ("cold", "no-op", "code-only", "lock change", "init", "shared", "local cold", *FIRST_RUN_CASES)
FLOW_CASES = ALL_CASES[:4]  # timed for all three flows, each case from the state the one before left
TRANSFER = re.compile(r"dependencies from cache .*, no build needed \([\d,]+ bytes in ([\d.]+)s\)")
ARTICLE_PIPENV = "2022.7.24"  # the last pipenv series with `pipenv lock -r`
ARTICLE_BASE_TAG = "lambda-kit-bench/article-base:latest"

ARTICLE_BASE_DOCKERFILE = """\
# The article's base image, adapted: its FROM amazonlinux:2 + yum + get-pip.py gave it python, pip,
# gcc and zip; here the kit's own base image gives python and zip, a venv gives pip, and pip is
# pointed at the CA bundle of this network's HTTPS proxy.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY ca.pem /etc/ssl/certs/lambda-kit-bench-ca.pem
RUN python3 -m venv /opt/article-python
ENV PATH=/opt/article-python/bin:$PATH PIP_CERT=/etc/ssl/certs/lambda-kit-bench-ca.pem PYTHONUTF8=1
"""

# The article's Dockerfile, line for line, but for the base image and the pipenv pin.
ARTICLE_DOCKERFILE = f"""\
FROM {ARTICLE_BASE_TAG}

RUN pip install pipenv=={ARTICLE_PIPENV}

ENV LANG en_US.UTF-8
ENV LC_ALL en_US.UTF-8
ENV PYTHONDONTWRITEBYTECODE 1

WORKDIR /app
COPY Pipfile* ./

RUN pipenv lock -r | sed 's/-e //g' | pip install -r /dev/stdin --target .
COPY lambdas ./
RUN find . -type f -iname '*.pyc' -delete && rm Pipfile*

RUN zip -r /tmp/code.zip .
"""


def run(argv, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench: `{' '.join(map(str, argv[:4]))}` failed (exit {result.returncode}):\n{tail}")
    return result


class ArticleFlow:
    name = "article"

    def __init__(self, folder: Path, tag: str) -> None:
        self.folder = folder
        self.tag = tag
        self.zip = folder / "build.zip"

    def build(self, no_cache: bool = False) -> None:
        # The article's four commands (--no-cache: a cold build without clearing the engine's caches).
        run(
            ["docker", "build", ".", "-t", self.tag, *(["--no-cache"] if no_cache else [])],
            cwd=self.folder,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        container = run(["docker", "create", self.tag, "/bin/true"]).stdout.strip()
        try:
            run(["docker", "cp", f"{container}:/tmp/code.zip", str(self.zip)])
        finally:
            run(["docker", "rm", container])

    def forget(self) -> None:
        run(["docker", "image", "rm", "--force", self.tag], check=False)


class KitFlow:
    name = "kit"

    def __init__(self, folder: Path, base_image: str, runtime: str, venv: str) -> None:
        self.folder = folder
        self.zip = folder / "build.zip"
        self.base_image = base_image
        self.settings = [f"PYTHON_VERSION={runtime}", f"BASE_IMAGE={base_image}"]
        self.env = {**os.environ, "LAMBDA_KIT_VENV": venv, "DOCKER_BUILDKIT": "0"}

    def build(self, *extra: str) -> None:
        run(["make", "--no-print-directory", "package", *self.settings, *extra], cwd=self.folder, env=self.env)

    def smoke(self, *extra: str) -> str:
        """The handler run from the zip in the base image, as `make smoke` runs it: its result line."""
        result = run(
            ["make", "--no-print-directory", "smoke", *self.settings, *extra, f"RUNTIME_IMAGE={self.base_image}"],
            cwd=self.folder,
            env=self.env,
        )
        lines = result.stdout.splitlines()
        passed = next(i for i, line in enumerate(lines) if line.startswith("lambda-kit: smoke passed"))
        return lines[passed - 1]  # the handler's JSON result, printed just before

    def smoke_report(self, *extra: str) -> dict:
        """`make smoke JSON=1`: the runner's report (init_ms, duration_ms, compiled_at_init, ...)."""
        result = run(
            [
                "make",
                "--no-print-directory",
                "smoke",
                *self.settings,
                *extra,
                "JSON=1",
                f"RUNTIME_IMAGE={self.base_image}",
            ],
            cwd=self.folder,
            env=self.env,
        )
        return json.loads(result.stdout.splitlines()[-1])

    def forget(self) -> None:
        self.zip.unlink(missing_ok=True)
        # The kit's own caches count as build cache too: dependency zips, wheelhouse, audit facts.
        state = self.folder / ".lambda-kit"
        for name in ("deps", "wheelhouse", "pip-cache"):
            shutil.rmtree(state / name, ignore_errors=True)
        (state / "audit-native.json").unlink(missing_ok=True)
        ids = run(["docker", "images", "-aq", "--filter", "label=org.lambda-kit.kit=lambda-kit"]).stdout.split()
        if ids:
            run(["docker", "image", "rm", "--force", *sorted(set(ids))], check=False)


class LocalKitFlow(KitFlow):
    """`make package BUILDER=local` in a checkout of its own; cold means an empty KIT_STATE: no
    dependency cache, no wheelhouse, no pip cache (the helper's own environment, which holds the
    local builder's pinned pip, is ready beforehand, like the uv flow's tools)."""

    name = "kit (local)"

    def build(self, *extra: str) -> None:
        super().build("BUILDER=local", *extra)

    def forget(self) -> None:
        self.zip.unlink(missing_ok=True)
        shutil.rmtree(self.folder / ".lambda-kit", ignore_errors=True)


def without_docker(work: Path) -> str:
    """A PATH with what make and the kit need, and no docker: a CI agent without an engine."""
    folder = work / "bin-without-docker"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for tool in ("make", "bash", "sh", "python3", "find", "mkdir", "printf", "sha256sum", "cut", "rm", "touch"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, folder / tool)
    return str(folder)


class SharedCacheAgents:
    """Agent A warms a shared store with a normal (Docker) build, signing it as a main-branch agent
    does (CACHE_SIGNING_KEY); each timed run is a fresh agent: a new checkout with an empty
    KIT_STATE and no docker on PATH, same lock, same settings, trusting A's public key
    (CACHE_TRUSTED_KEYS) or, as the kit did before signed entries, reading the same store without keys."""

    def __init__(self, work: Path, set_name: str, kit: KitFlow) -> None:
        from moto.server import ThreadedMotoServer  # LAMBDA_KIT_EXTRAS=test (make bench asks for it)

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise

        self.work, self.set_name, self.kit = work / set_name / "shared", set_name, kit
        shutil.rmtree(self.work, ignore_errors=True)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.aws = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
        }
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.aws["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket="bench-cache")
        (self.work / "shared-folder").mkdir(parents=True)
        cachesign.keygen(self.work / "cache.key", lambda line: None)
        self.signing = {"CACHE_SIGNING_KEY": str(self.work / "cache.key")}
        trusted = {"CACHE_TRUSTED_KEYS": str(self.work / "cache.key.pub")}
        urls = {"S3 (moto on 127.0.0.1)": "s3://bench-cache/fleet", "folder": str(self.work / "shared-folder")}
        self.stores = {
            f"{store}, {how}": (url, keys)
            for how, keys in (("signed", trusted), ("no keys", {}))
            for store, url in urls.items()
        }
        self.no_docker = without_docker(self.work)
        self.reference = None

    def agent(self, name: str) -> Path:
        folder = self.work / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copytree(PROJECTS / self.set_name / "lambdas", folder / "lambdas")  # not the kit's edited copy
        for lock in ("Pipfile", "Pipfile.lock"):
            shutil.copyfile(self.kit.folder / lock, folder / lock)
        copy_kit(ROOT, folder)
        return folder

    def warm(self) -> None:
        """Agent A builds (make -B: each store gets a build's push) and pushes; its images are removed after."""
        folder = self.agent("agent-a")
        try:
            for store in {url for url, _ in self.stores.values()}:
                run(
                    ["make", "--no-print-directory", "-B", "package", *self.kit.settings],
                    cwd=folder,
                    env={**self.kit.env, **self.aws, "CACHE_URL": store, **self.signing},
                )
            self.reference = (folder / "build.zip").read_bytes()
        finally:
            run(
                ["make", "--no-print-directory", "clean", *self.kit.settings], cwd=folder, env=self.kit.env, check=False
            )

    def fresh_agent(self, store: tuple[str, dict[str, str]]) -> tuple[float, float]:
        """Seconds for the whole `make package`, and the transfer alone as the kit reports it."""
        folder = self.agent("agent-fresh")
        env = {**self.kit.env, **self.aws, "CACHE_URL": store[0], "PATH": self.no_docker, **store[1]}
        started = time.perf_counter()
        result = run(["make", "--no-print-directory", "package", *self.kit.settings], cwd=folder, env=env)
        seconds = time.perf_counter() - started
        transfer = TRANSFER.search(result.stdout)
        if transfer is None or (folder / "build.zip").read_bytes() != self.reference:
            raise SystemExit(f"bench: the fresh agent did not get the zip from {store}:\n{result.stdout}")
        return seconds, float(transfer.group(1))

    def stop(self) -> None:
        self.server.stop()


def clear_build_cache(flows) -> None:
    for flow in flows:
        flow.forget()
    # The other set's article image shares this one's first layers (pipenv installed on the same
    # base): a cold build must not find them.
    tags = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "lambda-kit-bench/*"]).stdout.split()
    stale = [t for t in tags if t != ARTICLE_BASE_TAG]
    if stale:
        run(["docker", "image", "rm", "--force", *stale], check=False)
    run(["docker", "image", "prune", "--force"], check=False)
    run(["docker", "builder", "prune", "--all", "--force"], check=False)


def checkout(work: Path, set_name: str, name: str) -> Path:
    """A fresh folder with the set's code and its lock `a`."""
    folder = work / set_name / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copytree(PROJECTS / set_name / "lambdas", folder / "lambdas")
    use_lock(folder, set_name, "a")
    return folder


def prepare(work: Path, set_name: str, args, venv: str, tools: Path | None):
    """The three flows of the Docker-era cases, and the two of `local cold` (each in its own checkout)."""
    article_dir = checkout(work, set_name, "article")
    (article_dir / "Dockerfile").write_text(ARTICLE_DOCKERFILE)
    kit_dir = copy_kit(ROOT, checkout(work, set_name, "kit"))
    flows = {
        "article": ArticleFlow(article_dir, f"lambda-kit-bench/article-{set_name}:latest"),
        "kit": KitFlow(kit_dir, args.base_image, args.runtime, venv),
    }
    if tools is not None:
        uv = {
            name: UvFlow(checkout(work, set_name, name), tools, args.runtime, args.arch, args.ca_bundle)
            for name in ("uv", "uv-local")
        }
        local = copy_kit(ROOT, checkout(work, set_name, "kit-local"))
        flows.update(
            uv=uv["uv"], uv_local=uv["uv-local"], kit_local=LocalKitFlow(local, args.base_image, args.runtime, venv)
        )
    return flows


def use_lock(folder: Path, set_name: str, variant: str) -> None:
    for name in ("Pipfile", "Pipfile.lock"):
        shutil.copyfile(PROJECTS / set_name / variant / name, folder / name)


def edit_code(folder: Path, counter: int) -> None:
    app = folder / "lambdas" / "app.py"
    app.write_text(app.read_text() + f"# bench edit {counter}\n")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def build_article_base(base_image: str, ca_bundle: str, work: Path) -> None:
    folder = work / "article-base"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(ARTICLE_BASE_DOCKERFILE)
    shutil.copyfile(ca_bundle, folder / "ca.pem")
    run(
        ["docker", "build", "--build-arg", f"BASE_IMAGE={base_image}", "-t", ARTICLE_BASE_TAG, "."],
        cwd=folder,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )


def zip_sizes(path: Path) -> tuple[int, int]:
    with zipfile.ZipFile(path) as zf:
        return path.stat().st_size, sum(i.file_size for i in zf.infolist())


INIT_VARIANTS = (("default", ()), ("COMPILE=1", ("COMPILE=1",)), ("SLIM=1 COMPILE=1", ("SLIM=1", "COMPILE=1")))


def measure_init(kit: KitFlow, runs: int) -> list[tuple]:
    """Per variant: zip bytes, init ms of each run, modules of the zip compiled from source at init."""
    rows = []
    for label, extra in INIT_VARIANTS:
        kit.build(*extra)
        size = kit.zip.stat().st_size
        reports = [kit.smoke_report(*extra) for _ in range(runs)]
        rows.append(
            (
                label,
                size,
                [r["init_ms"] / 1000 for r in reports],
                [r["init_cpu_ms"] / 1000 for r in reports],
                len(reports[-1]["compiled_at_init"]),
            )
        )
        print(
            f"bench: init {label:16} {size:,} bytes, init {summarise(rows[-1][2])} s, CPU {summarise(rows[-1][3])} s",
            flush=True,
        )
    return rows


def init_lines(init: dict) -> list[str]:
    if not init:
        return []
    title = (
        "Cold-start init (the handler module's import, `make smoke` in the base image, unpacked read-only, "
        "as uid 993; seconds, median (min-max); wall clock, and the import's CPU time, which a shared CPU "
        "inflates less):"
    )
    lines = [
        "",
        title,
        "",
        "| set | zip | zipped bytes | vs default | init | vs default | init CPU | vs default "
        "| modules compiled at init |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, rows in init.items():
        base_size, base_init, base_cpu = rows[0][1], statistics.median(rows[0][2]), statistics.median(rows[0][3])
        for label, size, times, cpu, compiled in rows:
            lines.append(
                f"| {set_name} | {label} | {size:,} | {size / base_size:.3f}x | {summarise(times)} | "
                f"{statistics.median(times) / base_init:.2f}x | {summarise(cpu)} | "
                f"{statistics.median(cpu) / base_cpu:.2f}x | {compiled} |"
            )
    return lines


def summarise(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def machine_description() -> str:
    cores = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    server = run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip()
    client = run(["docker", "version", "--format", "{{.Client.Version}}"]).stdout.strip()
    return f"{cores} cores, {memory:.0f} GiB, Docker engine {server} (client {client}, legacy builder), {sys.platform}"


def bench_shared_cache(agents: SharedCacheAgents, runs: int) -> dict[str, list]:
    """Each run: the kit's own code-only rebuild, then a fresh agent per store, back to back, so
    the ratio compares runs made under the same load of a shared CPU."""
    try:
        agents.warm()
        agents.kit.build()  # untimed: the code-only runs start from a built checkout
        times = {"code-only": [], **{store: [] for store in agents.stores}}
        for n in range(runs):
            edit_code(agents.kit.folder, 100 + n)
            times["code-only"].append(timed(agents.kit.build))
            for store, url in agents.stores.items():
                times[store].append(agents.fresh_agent(url))
            print(
                f"bench: {agents.set_name} shared cache run {n + 1}/{runs}: code-only {times['code-only'][-1]:.2f}s, "
                + ", ".join(f"{s} {times[s][-1][0]:.2f}s" for s in agents.stores),
                flush=True,
            )
        return times
    finally:
        agents.stop()


def shared_lines(shared: dict[str, dict[str, list]], rows) -> list[str]:
    """The fresh agent's time beside the article's cold flow, the kit's cold build and the kit's
    code-only rebuild timed in the same runs."""
    if not shared:
        return []
    cold = {
        row.set: (statistics.median(row.article), statistics.median(row.kit) if row.kit else None)
        for row in rows
        if row.case.startswith("cold")
    }
    lines = [
        "",
        "A fresh CI agent (new checkout, empty KIT_STATE, no docker on PATH; the helper's own environment "
        "prepared, as for every kit case here) with a shared cache another agent warmed and signed (`CACHE_URL`, "
        "`CACHE_SIGNING_KEY`); the fresh agent trusts its key (signed: `CACHE_TRUSTED_KEYS`) or reads the same "
        "store without keys (no keys: as before signed entries); each run times the kit's code-only rebuild and "
        "then one fresh agent per store and mode, back to back:",
        "",
        "| set | store | fresh agent, warm cache | of which transfer | / article cold | / kit cold "
        "| kit code-only, same runs | / kit code-only |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for set_name, stores in shared.items():
        code = stores["code-only"]
        article_cold, kit_cold = cold.get(set_name, (None, None))
        for store, values in stores.items():
            if store == "code-only":
                continue
            whole, transfer = [v[0] for v in values], [v[1] for v in values]
            m = statistics.median(whole)
            vs_article = f"{m / article_cold:.3f}" if article_cold else "not run"
            vs_kit = f"{m / kit_cold:.3f}" if kit_cold else "not run"
            lines.append(
                f"| {set_name} | {store} | {summarise(whole)} | {summarise(transfer)} | {vs_article} | {vs_kit} | "
                f"{summarise(code)} | {m / statistics.median(code):.3f} |"
            )
    return lines


class Row(NamedTuple):
    """One line of the main table: each flow's seconds per run (None: not run in this case)."""

    set: str
    case: str
    article: list[float] | None
    uv: list[float] | None
    kit: list[float] | None


def ratio(kit: list[float] | None, peer: list[float] | None) -> str:
    return f"{statistics.median(kit) / statistics.median(peer):.3f}" if kit and peer else "-"


def main_table(rows: list[Row]) -> list[str]:
    lines = [
        "",
        "| set | case | article | uv flow | lambda-kit | kit/article | kit/uv |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [summarise(v) if v else "not run" for v in (row.article, row.uv, row.kit)]
        lines.append(
            f"| {row.set} | {row.case} | {' | '.join(cells)} | {ratio(row.kit, row.article)} | "
            f"{ratio(row.kit, row.uv)} |"
        )
    return lines


def bench_flows(flows: dict, set_name: str, cases: list[str], runs: int) -> list[Row]:
    """The four cases for the article, the uv flow and the kit, RUNS times; each case starts from
    the state the one before left (no-op after cold, ...)."""
    order = [flows["article"], flows["uv"], flows["kit"]]
    times = {(flow.name, case): [] for flow in order for case in FLOW_CASES}
    variant = "a"
    for n in range(runs):
        print(f"bench: {set_name} run {n + 1}/{runs}", flush=True)
        # The cold builds after one clearing (they share no layers); who goes first rotates.
        clear_build_cache(order)
        for flow in order[n % 3 :] + order[: n % 3]:
            times[(flow.name, "cold")].append(timed(flow.build))
        for flow in order:
            times[(flow.name, "no-op")].append(timed(flow.build))
        for flow in order:
            edit_code(flow.folder, n)
            times[(flow.name, "code-only")].append(timed(flow.build))
        variant = "b" if variant == "a" else "a"
        for flow in order:  # the uv flow keeps its cache, as the kit keeps its wheelhouse
            use_lock(flow.folder, set_name, variant)
            times[(flow.name, "lock change")].append(timed(flow.build))
    rows = [Row(set_name, case, times[("article", case)], times[("uv", case)], times[("kit", case)]) for case in cases]
    for row in rows:
        print(
            f"bench: {set_name:5} {row.case:11} article {summarise(row.article):>20}  uv {summarise(row.uv):>20}  "
            f"kit {summarise(row.kit):>20}  kit/article {ratio(row.kit, row.article)}  kit/uv {ratio(row.kit, row.uv)}",
            flush=True,
        )
    return rows


def bench_local_cold(flows: dict, set_name: str, runs: int) -> Row:
    """No Docker, nothing cached: `make package BUILDER=local` from an empty KIT_STATE against the uv
    flow from an empty uv cache, back to back in each run, who goes first alternating."""
    pair = [flows["kit_local"], flows["uv_local"]]
    times = {flow.name: [] for flow in pair}
    for n in range(runs):
        for flow in pair if n % 2 == 0 else pair[::-1]:
            flow.forget()
            times[flow.name].append(timed(flow.build))
    row = Row(set_name, "local cold", None, times["uv"], times["kit (local)"])
    print(
        f"bench: {set_name:5} local cold  uv {summarise(row.uv):>20}  kit BUILDER=local {summarise(row.kit):>20}  "
        f"kit/uv {ratio(row.kit, row.uv)}",
        flush=True,
    )
    return row


def zip_facts(path: Path) -> tuple[int, int, int]:
    """Zipped bytes, unzipped bytes, entries: the zip read back."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        return path.stat().st_size, sum(i.file_size for i in infos), len(infos)


def peers_note(args) -> list[str]:
    platform = uv_platform(args.runtime, args.arch)
    glibc = runtimes.lookup(args.runtime).glibc
    if platform.endswith(f"manylinux_{glibc[0]}_{glibc[1]}"):
        tags = f"uv is given {platform}, the runtime's own glibc, as the kit's tag list is."
    else:
        tags = (
            f"uv has no manylinux_{glibc[0]}_{glibc[1]} (its platforms jump from manylinux_2_17 to 2_28), so it is "
            f"given {platform}, the newest it has that the runtime loads: it refuses a lock whose wheels for a "
            "package start above that (pandas 2.3.3 on cp311: manylinux_2_24), which the kit installs."
        )
    return [
        "",
        f"The uv flow: `pipenv requirements --hash`, `uv pip install --target --python-platform {platform} "
        f"--python-version {args.runtime} --only-binary :all: --require-hashes --no-deps`, the code copied in, "
        f"`zip -qr -X`; no Docker, uv {UV_VERSION}. It has no incremental mode: its no-op and code-only rows are "
        "the whole script again with a warm uv cache; its cold rows start from an empty uv cache; its lock change "
        f"keeps the cache. The kit builds for python{args.runtime} (Lambda glibc {glibc[0]}.{glibc[1]}) and "
        f"accepts manylinux tags up to that glibc, whatever the base image's own glibc; {tags} "
        "`local cold` is `make package BUILDER=local` from an empty KIT_STATE (its wheelhouse and pip cache "
        "included; the helper's own environment ready, its bytecode with it, as the uv flow's uv and pipenv "
        "are) against the uv flow from an empty uv cache, back to back.",
    ]


LOAD = ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sets", default="small,large")
    parser.add_argument(
        "--base-image", default=os.environ.get("LAMBDA_KIT_TEST_BASE_IMAGE", "lambda-kit-test/base:bookworm-3")
    )
    parser.add_argument("--runtime", default="3.11", help="the Python of the base image")
    parser.add_argument(
        "--arch",
        default="x86_64",
        choices=sorted(runtimes.ARCHITECTURES),
        help="the base image's architecture, for the uv flow's platform",
    )
    parser.add_argument(
        "--ca-bundle",
        default=os.environ.get("CA_BUNDLE") or os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--cases", default=",".join(ALL_CASES), help=f"some of {','.join(ALL_CASES)}")
    args = parser.parse_args()
    selected = args.cases.split(",")
    if not set(selected) <= set(ALL_CASES):
        parser.error(f"unknown case in --cases {args.cases} (known: {','.join(ALL_CASES)})")
    work = ROOT / "bench" / "work"
    venv = sys.prefix  # the kit's own helper environment, shared by the kit copies
    cases = [c for c in FLOW_CASES if c in selected]
    if cases or "shared" in selected or "fresh agent" in selected:
        build_article_base(args.base_image, args.ca_bundle, work)
    tools = peer_tools(work) if cases or "local cold" in selected else None

    rows, sizes, slim, init, shared, fresh, new = [], {}, {}, {}, {}, {}, {}
    for set_name in args.sets.split(","):
        flows = prepare(work, set_name, args, venv, tools)
        article, kit = flows["article"], flows["kit"]
        first = FirstRuns(work, set_name, PROJECTS, kit.settings, article, args.runtime, args.arch, args.ca_bundle)
        if "fresh agent" in selected:
            fresh[set_name] = first.fresh_agents(args.runs)
        if "new checkout" in selected:
            new[set_name] = first.new_checkouts(args.runs)
        if "init" in selected:
            init[set_name] = measure_init(kit, args.runs)
        if "shared" in selected:
            shared[set_name] = bench_shared_cache(SharedCacheAgents(work, set_name, kit), args.runs)
            if "cold" not in cases:
                # The article's cold flow as `docker build --no-cache`: no engine-wide clearing (other
                # users of the engine keep their images and build cache). At most 3 runs: it is slow.
                no_cache = [timed(lambda flow=article: flow.build(no_cache=True)) for _ in range(min(args.runs, 3))]
                print(f"bench: {set_name} article cold (--no-cache) {summarise(no_cache)}", flush=True)
                rows.append(Row(set_name, "cold (article: --no-cache)", no_cache, None, None))
        if cases:
            rows += bench_flows(flows, set_name, cases, args.runs)
            sizes[set_name] = {name: zip_facts(flows[name].zip) for name in ("article", "uv", "kit")}
            # SLIM=1 on the same lock (a dependency build of its own), then the handler run from it.
            kit.build("SLIM=1")
            slim[set_name] = (zip_sizes(kit.zip), kit.smoke("SLIM=1"))
            print(f"bench: {set_name} SLIM=1 {slim[set_name][0]} handler: {slim[set_name][1]}", flush=True)
        if "local cold" in selected:
            rows.append(bench_local_cold(flows, set_name, args.runs))
            sizes.setdefault(set_name, {}).update(
                {
                    "uv (local cold)": zip_facts(flows["uv_local"].zip),
                    "kit BUILDER=local": zip_facts(flows["kit_local"].zip),
                }
            )

    if fresh or new:
        after = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        load = (
            f"Run on {datetime.date.today().isoformat()}: {machine_description()}; load average (1, 5, 15 min) "
            f"before: {LOAD}, after: {after}."
        )
        out = args.out.with_name("results-firstrun.md")
        out.write_text("\n".join(first_run_lines(fresh, new, args.runs, load)) + "\n")
        print(f"bench: wrote {out}")
        if set(selected) <= set(FIRST_RUN_CASES):
            return 0
    lines = [
        "# make bench: lambda-kit against the article's flow and the uv flow",
        "",
        f"Run on {datetime.date.today().isoformat()}: {machine_description()}.",
        f"Base image `{args.base_image}` (python{args.runtime}) for the Docker flows; {args.runs} runs per case; "
        + (
            "seconds, median (min-max), wall clock of the whole flow (build, create, cp, rm; for the kit "
            "`make package`, audit included; for the uv flow its whole script)."
            if rows
            else "init only."
        ),
    ]
    if rows:
        lines += main_table(rows)
    if tools is not None:
        lines += peers_note(args)
    lines += init_lines(init)
    lines += shared_lines(shared, rows)
    if sizes:
        lines += [
            "",
            "The zips of the last run, read back:",
            "",
            "| set | flow | zipped bytes | unzipped bytes | entries |",
            "|---|---|---|---|---|",
        ]
        for set_name, facts in sizes.items():
            for name, (zipped, unzipped, entries) in facts.items():
                lines.append(f"| {set_name} | {name} | {zipped:,} | {unzipped:,} | {entries:,} |")
    if slim:
        lines += [
            "",
            "SLIM=1 (same lock as the default zip above; the handler run from the slim zip with `make smoke` "
            "in the base image):",
            "",
            "| set | SLIM=1 zip (zipped / unzipped bytes) | smaller than the default by (zipped / unzipped) "
            "| handler result |",
            "|---|---|---|---|",
        ]
        for set_name, ((sz, su), result) in slim.items():
            kz, ku, _ = sizes[set_name]["kit"]
            lines.append(
                f"| {set_name} | {sz:,} / {su:,} | {100 * (1 - sz / kz):.1f}% / {100 * (1 - su / ku):.1f}% "
                f"| `{result}` |"
            )
    code = {row.set: statistics.median(row.kit) for row in rows if row.case == "code-only"}
    if {"small", "large"} <= set(code):
        lines += ["", f"Code-only change, large set / small set (kit): {code['large'] / code['small']:.2f}x."]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
