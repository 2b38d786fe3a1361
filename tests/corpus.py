"""The corpus: the most downloaded packages on PyPI that ship native code, each zipped as the kit
zips it and audited for each Lambda target (issue 23). `make corpus` runs the full sweep; CI runs a
bounded part (tests/integration/corpus/test_corpus.py).

    python tests/corpus.py [--top 1000] [--targets 3.12-x86_64,3.11-arm64,...] [--limit N] ...

1. select: the index page of each listed package (kept a day in the cache); a package is swept
   for a target when the file pip would install for it there is a platform (manylinux) wheel;
2. sweep: each one in a child process with a time limit, two at once (corpuswork.sweep_one:
   pip's resolution, wheels cached by SHA-256, the kit's installer, zip writer and audit);
3. report: the records as JSON, and a Markdown summary with counts per target and every package
   with an error, its rule and entries (bench/corpus.md).

A package whose resolution fails for a target is listed as not resolvable for it, not as an
error; one whose wheels alone are over Lambda's unzipped limit is listed as too large.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import corpuswork
from corpuswork import ROOT, Target, parse_target

# The 1,000 most downloaded packages on PyPI, a copy kept in the repository (CI's clone has nothing
# beside it); LAMBDA_KIT_RANKING names another ranking file of the same form.
RANKING = Path(os.environ.get("LAMBDA_KIT_RANKING") or ROOT / "tests" / "data" / "top-pypi-1000.tsv")
DEFAULT_TARGETS = ("3.12-x86_64", "3.11-arm64", "3.13-x86_64", "3.14-x86_64")
DEFAULT_CACHE = ROOT / ".lambda-kit" / "corpus"  # the kit's state folder: ignored by git, kept by CI within a run
CHUNK = 40  # index pages asked for at a time, in ranking order, until every target has its `limit`
PACKAGE_TIMEOUT = 600  # seconds for one package and target: resolution, downloads, zip, audit
JOBS = 2


def read_ranking(path: Path = RANKING, top: int | None = None) -> list[tuple[int, str]]:
    """(rank, name) of the ranking file (a header line `rank<TAB>name`, then one package a line)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip():
            rank, name = line.split("\t")[:2]
            rows.append((int(rank), name.strip()))
    rows.sort()
    return rows[:top] if top else rows


def select(
    cache: Path, ranking: list[tuple[int, str]], targets: list[Target], limit: int | None = None, say=print
) -> dict[str, dict]:
    """Per target: the packages (rank order) whose file for the target is a native wheel (at most
    `limit` of them), and the counts of the others: a pure wheel, no file for the target, no page;
    `looked-at`: how many of the ranking were looked at (with a limit, the rest is not asked about)."""
    http = corpuswork.client()
    out = {
        t.key: {"native": [], "native-total": 0, "pure": 0, "no-file": 0, "no-page": [], "looked-at": 0}
        for t in targets
    }

    def files(name: str):
        try:
            return corpuswork.page(cache, http, name)
        except Exception as exc:  # noqa: BLE001  any failure of one page is that package's, not the sweep's
            return exc

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for start in range(0, len(ranking), CHUNK):
            if limit is not None and all(len(o["native"]) >= limit for o in out.values()):
                break  # enough for every target: the rest of the ranking is not asked about
            chunk = ranking[start : start + CHUNK]
            for (rank, name), found in zip(chunk, pool.map(files, [n for _, n in chunk]), strict=True):
                for target in targets:
                    _sort(out[target.key], rank, name, found, target, limit)
                    out[target.key]["looked-at"] += 1
    for target in targets:
        picked = out[target.key]
        say(
            f"corpus: {target.label}: {picked['native-total']} of {picked['looked-at']} packages ship native code, "
            f"{len(picked['native'])} selected"
        )
    return out


def _sort(chosen: dict, rank: int, name: str, found, target: Target, limit: int | None) -> None:
    if isinstance(found, Exception) or not found:
        chosen["no-page"].append(name)
        return
    best = corpuswork.chosen_file(found, name, target)
    if best is None:
        chosen["no-file"] += 1
    elif not corpuswork.is_native(best.filename):
        chosen["pure"] += 1
    else:
        chosen["native-total"] += 1
        if limit is None or len(chosen["native"]) < limit:
            chosen["native"].append({"rank": rank, "package": name, "version": str(best.version)})


def sweep(
    cache: Path,
    selection: dict[str, dict],
    jobs: int = JOBS,
    timeout: float = PACKAGE_TIMEOUT,
    loader: bool = False,
    say=print,
) -> list[dict]:
    """Every selected package and target in a child process (`one`), `jobs` at once, each within
    `timeout` seconds; the records in selection order."""
    work = [(key, item) for key, picked in selection.items() for item in picked["native"]]
    if loader:
        loader_images([parse_target(key) for key in selection], say)

    def run(job):
        key, item = job
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "one",
            "--cache",
            str(cache),
            "--target",
            key,
            item["package"],
            item["version"],
            *(["--loader"] if loader else []),
        ]
        started = time.monotonic()
        base = {"package": item["package"], "version": item["version"], "target": key, "rank": item["rank"]}
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**base, "status": "timeout", "reason": f"over {timeout:.0f} s", "seconds": round(timeout)}
        lines = done.stdout.strip().splitlines()
        try:
            record = json.loads(lines[-1])
        except (IndexError, ValueError):
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])[-600:]
            record = {"status": "crashed", "reason": f"exit {done.returncode}: {tail}"}
        record = {**base, **record, "rank": item["rank"]}
        record.setdefault("seconds", round(time.monotonic() - started, 1))
        return record

    records = []
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for n, record in enumerate(pool.map(run, work), 1):
            errors = ", ".join(sorted(record.get("errors", {}))) or "-"
            say(
                f"corpus: [{n}/{len(work)}] {record['target']} {record['package']} {record['version']}: "
                f"{record['status']}, errors: {errors} ({record['seconds']} s)"
            )
            records.append(record)
    return records


def real_loader(packed: Path, target: Target) -> dict[str, list[str]] | None:
    """The real ld.so's verdict on each importable extension module of the zip ({module: sonames
    not found}), in an image with exactly the runtime's libraries (tests/loaderimage.py); None for
    a target the machine cannot run (arm64)."""
    import loaderimage

    if target.arch != "x86_64":
        return None
    image = loaderimage.loader_image(target.runtime)
    try:
        return loaderimage.loader_verdicts(image, packed, runtime=target.runtime)
    except RuntimeError:  # docker run answered for fewer members (seen under load): once more
        return loaderimage.loader_verdicts(image, packed, runtime=target.runtime)


def loader_images(targets: list[Target], say=print) -> None:
    """Build the loader's images before the sweep's children ask for them (two at once would both build)."""
    import loaderimage

    for runtime in sorted({t.runtime for t in targets if t.arch == "x86_64"}):
        say(f"corpus: the real loader's image for python{runtime}: {loaderimage.loader_image(runtime)}")


def run_one(args: argparse.Namespace) -> int:
    """The child: one package for one target; its record as the last line of stdout."""
    loader = real_loader if args.loader else None
    target = parse_target(args.target)
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):  # the kit's progress lines are not the record
        record = corpuswork.sweep_one(args.cache, args.package, args.version, target, loader)
    print(json.dumps(record), flush=True)
    return 0


def kit_commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def run_facts(ranking: list, jobs: int, loader: bool, seconds: float = 0, source: Path = RANKING) -> dict:
    """What the summary says of the run itself."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": kit_commit(),
        "ranking": f"top {len(ranking)} of {source.name}",
        "seconds": round(seconds),
        "cpus": os.cpu_count(),
        "jobs": jobs,
        "loader": loader,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corpus", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("one", help="one package for one target (the sweep's child process)")
    one.add_argument("package")
    one.add_argument("version")
    one.add_argument("--target", required=True)
    one.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    one.add_argument("--loader", action="store_true")
    parser.add_argument("--ranking", type=Path, default=RANKING, help="rank<TAB>name file (default: %(default)s)")
    parser.add_argument("--top", type=int, default=None, help="only the N most downloaded packages of the ranking")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS), help="comma-separated runtime-arch")
    parser.add_argument("--limit", type=int, default=None, help="at most N native packages per target")
    parser.add_argument("--packages", default="", help="comma-separated names: only these (from the ranking)")
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--timeout", type=float, default=PACKAGE_TIMEOUT, help="seconds per package and target")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="index pages, resolutions, wheels by SHA-256")
    parser.add_argument("--loader", action="store_true", help="compare with the real loader (Docker, x86_64)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "corpus.json")
    parser.add_argument("--md", type=Path, default=ROOT / "bench" / "corpus.md")
    again = sub.add_parser("report", help="write the Markdown summary again from a sweep's JSON")
    again.add_argument("--json", type=Path, default=ROOT / "bench" / "corpus.json")
    again.add_argument("--md", type=Path, default=ROOT / "bench" / "corpus.md")
    args = parser.parse_args(argv)
    if args.command == "one":
        return run_one(args)
    import corpusreport

    if args.command == "report":
        corpusreport.write(json.loads(args.json.read_text(encoding="utf-8")), None, args.md)
        return 0

    try:
        targets = [parse_target(t) for t in args.targets.split(",") if t.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    ranking = read_ranking(args.ranking, args.top)
    if args.packages:
        wanted = {p.strip().lower() for p in args.packages.split(",")}
        ranking = [(r, n) for r, n in ranking if n.lower() in wanted]
    started = time.monotonic()
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    selection = select(args.cache, ranking, targets, args.limit, say)
    records = sweep(args.cache, selection, args.jobs, args.timeout, args.loader, say)
    run = run_facts(ranking, args.jobs, args.loader, time.monotonic() - started, args.ranking)
    result = {"run": run, "selection": selection, "records": records}
    corpusreport.write(result, args.json, args.md)
    print(corpusreport.counts_line(result))
    return 1 if corpusreport.failing(records) else 0


if __name__ == "__main__":
    sys.exit(main())
