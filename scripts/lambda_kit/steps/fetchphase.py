"""The fetch phase of a build: every locked file the kit can choose as pip would, chosen and
downloaded at once (`wheelfetch`), each package from its own indexes only (`netconfig.route`:
pipenv's rule), bounded in time, and one error for all that cannot be installed.

1. Reachability first (`netprobe`): every index the packages need is asked once, in parallel,
   within the timeout. A failure is one line naming the index, the packages pinned to it, the
   class of failure and what to change, before any package is looked up: a dead index costs one
   timeout whatever the lock's size, and pip never retries it.
2. Every package at once (WORKERS threads): its pages, the file pip would take, the download. A
   host that stops answering meanwhile is dead for the rest of the run (`httpget`): one timeout.
   The whole phase has a deadline of FETCH_DEADLINE timeouts; an interrupt shuts every socket and
   returns within a second, whatever the servers do.
3. The outcome per package: a file in the wheelhouse; left to pip, with the reason logged (what
   the kit does not decide as pip would: an sdist to build, a target it does not model, settings it
   does not speak); or `Unavailable` with the exact reason (`wheelfetch.explain`). `error` puts
   every unavailable package, and every host that failed, into one error.
Standard library plus `packaging`: runs in the build image and on the host.
"""

from __future__ import annotations

import os
import queue
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from lambda_kit.common import reporter
from lambda_kit.common.errors import StepError
from lambda_kit.net import netprobe
from lambda_kit.net.httpget import Client, NetError
from lambda_kit.net.indexclient import LeaveToPip
from lambda_kit.net.netconfig import BuildNetwork, Index
from lambda_kit.steps import wheelcheck
from lambda_kit.steps.piprun import pip_failure, run_pip
from lambda_kit.steps.wheelfetch import FETCH_ENV, Unavailable, choose, download, project_of, sweep

if TYPE_CHECKING:
    from lambda_kit.steps.target import Target
    from lambda_kit.steps.toolchain import Toolchain

WORKERS = 8  # packages at once: network-bound; more only adds connections
FETCH_DEADLINE = 40  # the phase's deadline, in timeouts (10 minutes at pip's default 15 s)
STOP_WAIT = 0.5  # seconds the phase waits for its threads after an interrupt
HINTS = {
    "relock": "run `pipenv lock` to take the files published since (only if you trust them)",
    "hash": "the index's files differ from what `pipenv lock` recorded: re-lock only if you trust the new files",
    "pin": "pin versions that exist for this runtime and run `pipenv lock`",
    "page": "check the index the package comes from (INDEX_URL, the lock's sources)",
    "source": "name one of the lock's [[source]] entries, or run `pipenv lock` again",
    "vcs": "check the dependency's URL and ref (and git's access to it)",
}


@dataclass
class Result:
    chosen: dict[str, Path] = field(default_factory=dict)  # canonical name -> file in the wheelhouse
    downloaded: int = 0
    reused: int = 0
    left: dict[str, str] = field(default_factory=dict)  # canonical name -> why pip is asked
    failed: dict[str, Unavailable] = field(default_factory=dict)  # canonical name -> exactly why not
    routes: dict[str, list[Index]] = field(default_factory=dict)  # canonical name -> its indexes, in order
    hosts: dict[str, tuple[Index, NetError, list[str]]] = field(default_factory=dict)  # failed mid-run


def routes_of(packages, network: BuildNetwork, lock_sources: list[dict]) -> tuple[dict, dict]:
    """Each package's indexes (pipenv's rule), and the packages whose lock entry names no source."""
    sources = network.sources(lock_sources)
    routes, failed = {}, {}
    for p in packages:
        name = canonicalize_name(p.name)
        try:
            routes[name] = network.route(sources, getattr(p, "index", ""))
        except KeyError:
            failed[name] = Unavailable(f'{p.name}: the lock\'s index "{p.index}" is not one of its sources', "source")
    return routes, failed


def reachable(client: Client, routes: dict[str, list[Index]]) -> None:
    """The probe (1.): StepError naming every index that cannot be used."""
    needed: dict[str, tuple[Index, list[str]]] = {}
    for name, indexes in routes.items():
        for index in indexes:
            needed.setdefault(index.url, (index, []))[1].append(name)
    failures = netprobe.probe(client, [netprobe.Target(i, tuple(names)) for i, names in needed.values()])
    if failures:
        raise StepError(*netprobe.message(failures))


def client_for(network: BuildNetwork) -> Client:
    try:
        return Client(network.http_settings())
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise StepError(
            f"the network settings cannot be used ({exc})", "check CA_BUNDLE, PIP_CERT and pip's client-cert setting"
        ) from None


def fetch(
    packages,
    target: Target | None,
    network: BuildNetwork,
    lock_sources: list[dict],
    wheelhouse: Path,
    log,
    *,
    target_name: str = "this runtime",
    use_pip: bool = False,
) -> Result:
    """Choose and download each package's file (`packages`: name, version, hashes, index)."""
    routes, failed = routes_of(packages, network, lock_sources)
    result = Result(failed=failed, routes=routes)
    asked = [p for p in packages if canonicalize_name(p.name) in routes]
    if not asked:
        return result
    if why := network.unsupported():  # what pip does and the kit does not: pip does it all, no probe
        log(reporter.line(f"{why}: pip downloads every file\n"))
        result.left = {canonicalize_name(p.name): why for p in asked}
        return result
    client = client_for(network)
    reachable(client, routes)
    if use_pip or target is None:
        why = f"{FETCH_ENV}=pip" if use_pip else "no explicit target: pip judges this interpreter"
        result.left = {canonicalize_name(p.name): why for p in asked}
        return result
    client.settings.deadline = time.monotonic() + FETCH_DEADLINE * client.settings.timeout
    wheelhouse.mkdir(parents=True, exist_ok=True)
    sweep(wheelhouse)
    find_links = [Path(f) for f in network.settings.get("FIND_LINKS", "").split() if Path(f).is_dir()]
    work: queue.Queue = queue.Queue()
    done: queue.Queue = queue.Queue()
    stop = threading.Event()
    for p in asked:
        work.put(p)

    def worker() -> None:
        while not stop.is_set():
            try:
                p = work.get_nowait()
            except queue.Empty:
                return
            name = canonicalize_name(p.name)
            try:
                best = choose(
                    p.name,
                    p.version,
                    tuple(p.hashes),
                    target,
                    client,
                    [i.url for i in routes[name]],
                    find_links,
                    target_name,
                )
                done.put((name, "ok", download(client, best, p.name, wheelhouse, stop)))
            except NetError as exc:  # a connection that broke midway: pip tries again (and resumes)
                done.put((name, "LeaveToPip", exc) if exc.kind == "broken" else (name, "NetError", exc))
            except (LeaveToPip, Unavailable) as exc:
                done.put((name, type(exc).__name__, exc))
            except BaseException as exc:  # noqa: BLE001  a kit bug: raised in the caller's thread
                done.put((name, "bug", exc))

    threads = [threading.Thread(target=worker, daemon=True, name=f"fetch-{n}") for n in range(min(WORKERS, len(asked)))]
    for thread in threads:
        thread.start()
    try:
        for _ in asked:
            name, kind, value = _next(done, client)
            _record(result, name, kind, value, log)
    finally:
        stop.set()  # on an error or an interrupt: every socket shut, the threads end at once
        client.abort()
        ends = time.monotonic() + STOP_WAIT
        for thread in threads:
            thread.join(max(0.0, ends - time.monotonic()))
    return result


def _next(done: queue.Queue, client: Client):
    """The next package's outcome; past the deadline (a thread stuck where no socket can be shut,
    as a name lookup), the phase ends."""
    while True:
        try:
            return done.get(timeout=0.2)  # short waits: a signal's handler runs between them
        except queue.Empty:
            if client.settings.deadline is not None and time.monotonic() > client.settings.deadline + 2:
                timeout = client.settings.timeout
                raise StepError(
                    f"the downloads did not finish within {FETCH_DEADLINE * timeout:g} s "
                    f"({FETCH_DEADLINE} x the timeout of {timeout:g} s)",
                    "check the network, or raise PIP_TIMEOUT",
                ) from None


def _record(result: Result, name: str, kind: str, value, log) -> None:
    if kind == "bug":
        raise value
    if kind == "LeaveToPip":
        result.left[name] = str(value)
        log(reporter.line(f"{name}: left to pip ({value})\n"))
    elif kind == "Unavailable":
        result.failed[name] = value
        log(reporter.line(f"{name}: cannot be installed: {value.clause}\n"))
    elif kind == "NetError":
        route = result.routes[name]
        index = next((i for i in route if i.host == value.where), None)
        index = index or Index(f"https://{value.where}/", f"files of {route[0].host}", route[0].fix)
        entry = result.hosts.setdefault(value.where, (index, value, []))
        entry[2].append(name)
        log(reporter.line(f"{name}: {value}\n"))
    else:
        path, fresh = value
        result.chosen[name] = path
        result.downloaded += fresh
        result.reused += not fresh
        log(
            reporter.line(f"fetched {path.name} ({path.stat().st_size} bytes)\n")
            if fresh
            else reporter.line(f"kept {path.name} (in the wheelhouse with the lock's hash)\n")
        )


def error(
    result: Result, target_name: str, compile_hint: str, more: dict[str, Unavailable] | None = None
) -> StepError | None:
    """One error for everything that cannot be installed: the hosts that failed mid-run first (as
    the probe says it), else every unavailable package with its reason (`more`: pip's findings)."""
    stopped = [(i, e, n) for i, e, n in result.hosts.values() if e.kind != "stopped"]
    if stopped:
        return StepError(*netprobe.message([(netprobe.Target(i, tuple(n)), e) for i, e, n in stopped]))
    failed = {**result.failed, **(more or {})}
    if not failed:
        return None
    clauses = [failed[n] for n in sorted(failed)]
    hints = [HINTS.get(k, compile_hint) for k in dict.fromkeys(c.kind for c in clauses)]
    if len(clauses) == 1 and clauses[0].kind == "hash":
        return StepError(clauses[0].clause, hints[0])
    return StepError(
        f"cannot install {len(clauses)} locked package(s) for {target_name}: " + "; ".join(c.clause for c in clauses),
        "; ".join(hints),
    )


def default_route(network: BuildNetwork, lock_sources: list[dict]) -> list[Index]:
    """The indexes of a package the lock pins to no source (and of local packages' builds)."""
    return network.route(network.sources(lock_sources))


def by_route(tools: Toolchain, packages, lock_sources: list[dict]):
    """(indexes, packages) for each distinct route, in the packages' order: pip is run once per
    route, so no name is ever asked of an index it is not pinned to."""
    routes, _ = routes_of(packages, tools.network, lock_sources)
    groups: dict[tuple[str, ...], tuple[list[Index], list]] = {}
    for p in packages:
        route = routes.get(canonicalize_name(p.name))
        if route is not None:
            groups.setdefault(tuple(i.url for i in route), (route, []))[1].append(p)
    return list(groups.values())


def fetch_files(tools: Toolchain, packages: list, tmp: Path, lock_sources: list[dict]) -> dict[str, Path]:
    """Each package's file into the wheelhouse, hash-checked, chosen as pip would: by the kit (all
    at once) where it can decide as pip does, by `pip download` (once per route) for the rest.
    Returns the file chosen for each package, by canonical name; raises one StepError for all
    that cannot be installed."""
    wheelhouse = tools.wheelhouse
    if wheelhouse is None:  # install_index_packages gives it one, kept or for this build only
        raise ValueError("fetch_files needs the toolchain's wheelhouse")
    target_name = tools.target_name
    result = fetch(
        packages,
        tools.target,
        tools.network,
        lock_sources,
        wheelhouse,
        tools.echo,
        target_name=target_name,
        use_pip=tools.fetch == "pip",
    )
    host_failure = error(result, target_name, tools.no_wheel_hint) if result.hosts else None
    if host_failure is not None:
        raise host_failure
    chosen, reused, saved, more = dict(result.chosen), result.reused, result.downloaded, {}
    rest = [p for p in packages if canonicalize_name(p.name) in result.left]
    for n, (indexes, group) in enumerate(by_route(tools, rest, lock_sources)):
        requirements = tmp / f"requirements-{n}.txt"
        requirements.write_text("".join(p.requirement_line() + "\n" for p in group), encoding="utf-8")
        try:
            lines = pip_download(tools, requirements, indexes, wheelhouse)
        except StepError as exc:
            if not getattr(exc, "not_found", None):
                raise
            more.update(
                explain_pip(tools, group, indexes) or {canonicalize_name(group[0].name): Unavailable(str(exc), "pin")}
            )
            continue
        chosen.update(chosen_files(lines, wheelhouse))
        reused += sum("File was already downloaded" in line for line in lines)
        saved += sum("Saved " in line for line in lines)
    failure = error(result, target_name, tools.no_wheel_hint, more)
    if failure is not None:
        raise failure
    by_pip = f" ({len(rest)} by pip)" if rest else ""
    print(reporter.line(f"wheelhouse: {reused} files reused, {saved} downloaded{by_pip}"), flush=True)
    return chosen


def explain_pip(tools: Toolchain, packages, indexes: list[Index]) -> dict[str, Unavailable]:
    """Every package of one route pip finds no file for, each with why (wheelcheck, asking pip)."""
    env, cleanup = tools.network.pip_environment(indexes)
    cache = ["--cache-dir", tools.cache_dir] if tools.cache_dir else ["--no-cache-dir"]

    def pip(args: list[str]) -> tuple[int, str]:
        done = subprocess.run(
            [str(tools.python), "-m", "pip", *args, "--no-input", *cache],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        tools.echo(done.stdout)
        return done.returncode, done.stdout

    try:
        pins = {p.name: p.version.lstrip("=") for p in packages}
        clauses = wheelcheck.report(pip, pins, tools.target_args, tools.target_name)
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)
    kind = "compile" if tools.target and not tools.target.sources_allowed else "pin"
    return {canonicalize_name(c.split("=")[0].split(" ")[0]): Unavailable(c, kind) for c in clauses}


def pip_download(tools: Toolchain, requirements: Path, indexes: list[Index], wheelhouse: Path) -> list[str]:
    """`pip download` every file of `requirements` into the wheelhouse, hash-checked. pip keeps a
    file that is already there with a matching hash. Returns pip's output lines."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    argv = [
        str(tools.python),
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-input",
        "--progress-bar",
        "off",
        "--require-hashes",
        "--dest",
        str(wheelhouse),
        *tools.target_args,
        "-r",
        str(requirements),
    ]
    code, lines = run_pip(tools, argv, indexes)
    if code != 0:
        raise pip_failure(code, lines, tools)
    return lines


def chosen_files(lines: list[str], wheelhouse: Path) -> dict[str, Path]:
    """The files `pip download` saved or found already downloaded, by the canonical name of the
    project each belongs to (a file name that is neither a wheel's nor an sdist's is skipped)."""
    chosen: dict[str, Path] = {}
    for line in lines:
        text = line.strip()
        for prefix in ("Saved ", "File was already downloaded "):
            if text.startswith(prefix):
                file = wheelhouse / os.path.basename(text[len(prefix) :].strip())
                name = project_of(file.name)
                if name and file.is_file():
                    chosen[name] = file
    return chosen
