"""Command line: `lambda-kit package ...`. Errors become one line plus a hint, never a traceback
(LAMBDA_KIT_DEBUG=1 shows tracebacks and every command run)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from lambda_kit.builders.runner import Runner, install_signal_handlers, interruption
from lambda_kit.code import sources
from lambda_kit.code.kitfiles import install_into
from lambda_kit.common import reporter, runtimes, tempdirs
from lambda_kit.common.errors import Interrupted, KitError, UsageError
from lambda_kit.dependencies import cachesettings, cachesign
from lambda_kit.deploy import deploy
from lambda_kit.lock import lockfile, lockformats
from lambda_kit.package import build_layer, package, prepare_dependencies
from lambda_kit.plan import network
from lambda_kit.plan.buildplan import PackageSettings, validate_handler
from lambda_kit.zips.zipreader import escape

if TYPE_CHECKING:
    from lambda_kit.audit import audit

KIT_DIR = Path(__file__).resolve().parent.parent.parent


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2
        raise UsageError(message, hint=f"see `{self.prog} --help`")


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lambda-kit", description="Build AWS Lambda deployment zips from Pipfile.lock in Docker.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("package", help="build the deployment zip in Docker")
    layer = sub.add_parser("layer", help="build a layer zip: the dependencies under python/")
    deps = sub.add_parser("deps", help="build the dependencies into the kit's cache (for several functions)")
    for q in (p, layer, deps):
        q.add_argument(
            "--pipfile", type=Path, help="the Pipfile; its .lock sits beside it (default: the project's lock)"
        )
        q.add_argument("--lock", type=Path, help=f"the lock: a {lockformats.READS} (default: the project's one lock)")
        q.add_argument(
            "--runtime",
            default=runtimes.DEFAULT_RUNTIME,
            help=f"Lambda Python version ({', '.join(sorted(runtimes.RUNTIMES))})",
        )
        q.add_argument("--arch", default=runtimes.DEFAULT_ARCH, choices=sorted(runtimes.ARCHITECTURES))
        q.add_argument("--base-image", default="", help="build image (default: the AWS SAM build image)")
        q.add_argument("--slim", action="store_true", help="drop packages' tests, stubs and C sources, debug sections")
        q.add_argument("--compile", action="store_true", help="ship hash-based .pyc for what the function imports")
        q.add_argument(
            "--compile-profile", type=Path, help="with --compile: modules recorded by `smoke --record-imports`"
        )
        q.add_argument(
            "--fresh", action="store_true", help="rebuild the dependencies even if the cache has them (make -B)"
        )
        q.add_argument(
            "--builder",
            default="auto",
            help="auto (default): Docker when an engine answers, else local; "
            "docker; or local: no Docker, binary wheels only",
        )
        q.add_argument("--state-dir", type=Path, default=KIT_DIR / ".lambda-kit", help="build log, caches")
    for q in (p, layer):
        q.add_argument("--out", type=Path, default=Path("build.zip"), help="the zip to write")
    p.add_argument("--src", type=Path, default=Path("lambdas"), help="folder whose contents go to the zip root")
    p.add_argument("--handler", default="app.handler", help="module.function, relative to the source folder")
    p.add_argument("--no-deps", action="store_true", help="the code only: its dependencies come from a layer")
    p.add_argument("--layer", type=Path, action="append", default=[], help="a layer zip the audit counts (repeatable)")
    i = sub.add_parser("install-kit", help="copy the kit into REPO/lambda-kit/, leaving the repo's own files alone")
    i.add_argument("repo", type=Path)
    c = sub.add_parser("check", help="audit a Lambda zip (any zip) for what Lambda would reject")
    c.add_argument("zip", type=Path)
    c.add_argument("--runtime", default=runtimes.DEFAULT_RUNTIME, help="Lambda Python version, 3.12 or python3.12")
    c.add_argument("--arch", default=runtimes.DEFAULT_ARCH, choices=sorted(runtimes.ARCHITECTURES))
    c.add_argument("--handler", help="module.function: its module must be in the zip and define it")
    c.add_argument("--lock", type=Path, help=f"a {lockformats.READS}: the zip must hold what it locks, at its versions")
    c.add_argument("--find-lock", action="store_true", help="without --lock: the project's lock, as package finds it")
    c.add_argument("--pipfile", type=Path, help="with --find-lock: the Pipfile whose lock it is")
    c.add_argument(
        "--layer", type=Path, action="append", default=[], help="a layer zip counted toward 250 MB (repeatable)"
    )
    c.add_argument("--json", action="store_true", help="print a machine-readable report")
    c.add_argument("--junit", type=Path, help="also write the findings as a JUnit XML report (one case per rule)")
    c.epilog = "Exit status: 0 clean or warnings only, 1 errors, 2 usage, 70 internal error (a kit bug)."
    m = sub.add_parser("smoke", help="run the handler from a zip in the Lambda runtime image, as Lambda would")
    m.add_argument("zip", type=Path)
    m.add_argument("--handler", default="app.handler", help="module.function")
    m.add_argument("--event", type=Path, help="a JSON event file (default: {})")
    m.add_argument("--runtime", default=runtimes.DEFAULT_RUNTIME)
    m.add_argument("--arch", default=runtimes.DEFAULT_ARCH, choices=sorted(runtimes.ARCHITECTURES))
    m.add_argument("--image", default="", help="runtime image (default: public.ecr.aws/lambda/python:3.X-ARCH)")
    m.add_argument("--timeout", type=float, default=60.0, help="seconds before the invocation times out")
    m.add_argument("--state-dir", type=Path, default=KIT_DIR / ".lambda-kit")
    deploy.add_parsers(sub)
    k = sub.add_parser("cache-keygen", help="write an Ed25519 key pair for signed CACHE_URL entries: KEY and KEY.pub")
    k.add_argument("key", type=Path, help="the private key file to write (mode 0600); KEY.pub gets the public key")
    m.add_argument("--json", action="store_true", help="print the report as JSON (the handler's logs go to stderr)")
    m.add_argument(
        "--record-imports", type=Path, help="write the zip's modules the run imported here (COMPILE=1's profile)"
    )
    p.epilog = (
        "Network settings come from the environment so they never show in a process list: "
        "INDEX_URL, EXTRA_INDEX_URLS (space-separated), CA_BUNDLE (default: $PIP_CERT), SOURCE_DATE_EPOCH. "
        "CACHE_URL (s3://bucket/prefix or a folder) shares the dependency cache between agents; "
        "CACHE_PUSH=0 only reads it; CACHE_SIGNING_KEY signs what is pushed, CACHE_TRUSTED_KEYS lists the keys "
        "whose entries are used."
    )
    return parser


def _network_from_environment() -> network.NetworkSettings:
    return network.from_environment(os.environ)


def run_command(args: argparse.Namespace) -> int:
    if args.command in ("package", "layer", "deps"):
        cache_keys = cachesign.from_environment(os.environ, wanted=bool(_env("CACHE_URL")))
        cache_url, cache_push = cachesettings.check_settings(_env("CACHE_URL"), _env("CACHE_PUSH"), cache_keys)
        choice = _lock_choice(args)
        pipfile = (
            choice.project if choice.format == lockformats.PIPFILE else args.pipfile or Path("Pipfile")
        ).resolve()
        state_dir = args.state_dir.resolve()
        src = getattr(args, "src", Path("lambdas")).resolve()
        out = getattr(args, "out", Path("build.zip")).resolve()
        settings = PackageSettings(
            kit_dir=KIT_DIR,
            pipfile=pipfile,
            src=src,
            out=out,
            state_dir=state_dir,
            runtime=args.runtime,
            arch=args.arch,
            handler=getattr(args, "handler", "app.handler"),
            base_image=args.base_image,
            network=_network_from_environment(),
            source_date_epoch=_env("SOURCE_DATE_EPOCH") or None,
            builder=args.builder,
            fresh=args.fresh,
            slim=args.slim,
            compile=args.compile,
            compile_profile=args.compile_profile.resolve() if args.compile_profile else None,
            include_deps=not getattr(args, "no_deps", False),
            layers=tuple(p.resolve() for p in getattr(args, "layer", [])),
            cache_url=cache_url,
            cache_push=cache_push,
            cache_keys=cache_keys,
            sources=sources.rules_from_environment(src, pipfile, KIT_DIR, state_dir, out),
            cache_dir=Path(_env("LAMBDA_KIT_CACHE")).resolve() if _env("LAMBDA_KIT_CACHE") else None,  # the launcher's
            lock=choice.path.resolve(),
            selection=lockformats.Selection.from_environment(os.environ),
            fetch=_env("LAMBDA_KIT_FETCH"),
        )
        say = lambda line: print(line, flush=True)  # noqa: E731
        if choice.note:
            say(reporter.line(f"{choice.note}: building from {choice.path.name}"))
        elif choice.found and choice.format != lockformats.PIPFILE:
            say(reporter.line(f"building from {choice.path.name}, the project's lock (LOCK=... chooses another)"))
        if args.command == "deps":
            prepare_dependencies(settings, Runner(), say)
            return 0
        result = (package if args.command == "package" else build_layer)(settings, Runner(), say)
        for line in result.summary_lines():
            print(line, flush=True)
        return 0
    if args.command == "install-kit":
        if not args.repo.is_dir():
            raise UsageError("no such folder", str(args.repo), hint="make install-kit DEST=path/to/your/repo")
        installed = install_into(KIT_DIR, args.repo)
        print(reporter.line(f"installed in {installed}"))
        print("  use it: make -f lambda-kit/Makefile package SRC=... HANDLER=...")
        print("  or add `include lambda-kit/Makefile` to your Makefile, after your own default target")
        return 0
    if args.command == "check":
        return run_check(args)
    if args.command == "smoke":
        return run_smoke(args)
    if args.command in ("deploy", "deploy-layer"):
        return deploy.run(args, say=lambda line: print(line, flush=True))
    if args.command == "cache-keygen":
        cachesign.keygen(args.key, say=lambda line: print(line, flush=True))
        return 0
    raise UsageError("unknown command", args.command)


def _lock_choice(args: argparse.Namespace) -> lockformats.LockChoice:
    """LOCK, else PIPFILE's lock, else the one lock in the current folder (the project's)."""
    return lockformats.choose(args.lock, args.pipfile, Path.cwd())


def run_check(args: argparse.Namespace) -> int:
    from lambda_kit.audit import audit, junit

    runtimes.lookup(args.runtime)
    if args.handler:
        validate_handler(args.handler)
    lock = None
    if args.lock or args.find_lock:
        choice = _lock_choice(args) if args.find_lock else lockformats.chosen(args.lock)
        environment = runtimes.target_environment(runtimes.lookup(args.runtime), args.arch)
        try:
            lock = lockformats.read(choice, environment, lockformats.Selection.from_environment(os.environ))
        except lockfile.LockError as exc:
            raise UsageError(str(exc), hint=exc.hint) from None  # a bad --lock is a usage error here: exit 2
    suite = junit.names(args.zip.name, runtimes.lookup(args.runtime).name, args.arch)
    started = time.monotonic()
    try:
        report = audit.audit_zip(
            args.zip, runtime=args.runtime, arch=args.arch, handler=args.handler, lock=lock, layers=args.layer
        )
    except KitError as exc:
        if args.junit:
            junit.write_failure(args.junit, suite, exc)
        raise
    if args.junit:
        junit.write(args.junit, suite, audit.RULES, report.findings, time.monotonic() - started)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for line in report_lines(report):
            print(line)
    return 1 if report.errors else 0


def run_smoke(args: argparse.Namespace) -> int:
    from lambda_kit.smoke import smoke  # only this command needs it (and what it imports)

    settings = smoke.SmokeSettings(
        kit_dir=KIT_DIR,
        zip=args.zip.resolve(),
        handler=args.handler,
        state_dir=args.state_dir.resolve(),
        event=args.event,
        runtime=args.runtime,
        arch=args.arch,
        image=args.image,
        timeout=args.timeout,
        network=_network_from_environment(),
        cache_dir=Path(_env("LAMBDA_KIT_CACHE")).resolve() if _env("LAMBDA_KIT_CACHE") else None,  # the launcher's
    )
    logs = sys.stderr if args.json else sys.stdout
    report = smoke.smoke(settings, Runner(), say=lambda line: print(line, file=logs, flush=True))
    imported = report.pop("imported", [])
    if args.json:
        print(json.dumps(report, sort_keys=True), flush=True)
    if args.record_imports and report["ok"]:
        tmp = args.record_imports.with_name(args.record_imports.name + ".tmp")
        tmp.write_text("".join(name + "\n" for name in imported), encoding="utf-8")
        tmp.replace(args.record_imports)
        print(
            reporter.line(f"recorded {len(imported)} imported modules in {args.record_imports}"), file=logs, flush=True
        )  # one line, the last on stdout
    if not report["ok"]:
        error = report["error"]
        print(json.dumps(error), file=logs, flush=True)
        raise KitError(
            "the handler failed",
            f"{error['errorType']}: {error['errorMessage']}",
            hint="the error is what Lambda would report for this zip",
        )
    compiled = len(report["compiled_at_init"])
    print(report["result"], file=logs, flush=True)
    print(
        reporter.line(
            f"smoke passed: {args.handler} returned in {report['duration_ms']} ms after an init of "
            f"{report['init_ms']} ms, peak memory {report['peak_memory_mb']} MB ({report['entries']} zip entries "
            f"unpacked; {compiled} modules of the zip compiled from source at init)"
        ),
        file=logs,
        flush=True,
    )
    return 0


def report_lines(report: audit.Report) -> list[str]:
    lines = [
        reporter.line(
            f"audit of {report.zip} for {report.runtime} {report.arch}: {report.files} files, "
            f"{report.zipped_bytes:,} bytes zipped, {report.unzipped_bytes:,} unzipped"
        )
    ]
    for finding in report.findings:
        lines += [finding.line(), f"{'':8}hint: {finding.hint}"]
    lines.append(reporter.line(f"audit: {report.errors} errors, {report.warnings} warnings"))
    return lines


INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: a kit bug, not the user's input


def main(argv: list[str] | None = None) -> int:
    debug = _env("LAMBDA_KIT_DEBUG") == "1"
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format=reporter.line("debug: %(message)s"))
    install_signal_handlers()
    interruption.committed, interruption.signal_name = False, None
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # held by the launcher
        args = build_parser().parse_args(argv)
        state_dir = getattr(args, "state_dir", None)
        if state_dir is None:
            code = run_command(args)
        else:
            with tempdirs.run_folder(state_dir.resolve()):
                code = run_command(args)
        if interruption.committed and interruption.signal_name:
            print(
                reporter.line(
                    f"{interruption.signal_name} arrived after the zip was replaced: the new zip is complete"
                ),
                file=sys.stderr,
                flush=True,
            )
        return code
    except KitError as exc:
        if debug:
            traceback.print_exc()
        print("\n".join(exc.lines()), file=sys.stderr, flush=True)
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted) as exc:
        name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else str(exc)
        print(reporter.line(f"error: interrupted ({name}); the previous zip is untouched"), file=sys.stderr, flush=True)
        return 130 if name == "SIGINT" else 143
    except Exception as exc:  # noqa: BLE001  a kit bug or an unforeseen input: one line, never a traceback
        return internal_error(exc, debug)


def internal_error(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    place = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
    detail = escape(str(exc).splitlines()[0] if str(exc) else "")
    print(reporter.line(f"internal error: {type(exc).__name__}{place}: {detail}"), file=sys.stderr, flush=True)
    zip_state = "the new zip is in place" if interruption.committed else "the previous zip is untouched"
    print(
        f"hint: rerun with LAMBDA_KIT_DEBUG=1 for the traceback, and report it; {zip_state}",
        file=sys.stderr,
        flush=True,
    )
    return INTERNAL_ERROR
