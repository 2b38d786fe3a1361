"""`smoke`: run the handler from the final zip the way Lambda does, in the runtime image.

    1. build (or reuse) the smoke image: the runtime image plus awslambdaric, pinned and hashed
    2. docker create a fresh container (root, so it can unpack; the handler runs as uid 993)
    3. docker cp the zip and the event in; docker start --attach; docker rm --force, always
    0. audit the zip (bounded): errors stop the run before anything is unpacked; with no engine and
       the runtime's Python on the host, steps 1-3 run on the host instead (hostsmoke.py)
    4. copy the runner's report out of the stopped container (a root-only file, never the
       handler's stdout) and check it: the result, or Lambda's error (Runtime.ImportModuleError, ...)

No bind mounts, so a remote DOCKER_HOST works, and the zip is never baked into an image.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambda_kit.audit import audit
from lambda_kit.builders import docker
from lambda_kit.builders.context import stage_smoke
from lambda_kit.builders.dockerbuild import failure as build_failure
from lambda_kit.builders.runner import Run
from lambda_kit.common import reporter, runtimes
from lambda_kit.common.errors import CommandFailed, KitError, UsageError
from lambda_kit.invoke import smoke_runner
from lambda_kit.plan.buildplan import checkout_id
from lambda_kit.plan.network import NetworkSettings, secret_files
from lambda_kit.smoke.report import read_report

RUNNER = "/opt/lambda-kit-smoke/lambda_kit/invoke/smoke_runner.py"  # the image sets PYTHONPATH
REPORT_FILE = smoke_runner.REPORT_FILE  # root only in the container


@dataclass
class SmokeSettings:
    kit_dir: Path
    zip: Path
    handler: str
    state_dir: Path
    event: Path | None = None
    runtime: str = runtimes.DEFAULT_RUNTIME
    arch: str = runtimes.DEFAULT_ARCH
    image: str = ""
    timeout: float = 60.0
    network: NetworkSettings | None = None
    cache_dir: Path | None = None  # the machine's cache (KIT_CACHE): awslambdaric for a run on the host


def smoke_image(s: SmokeSettings, runtime: runtimes.Runtime, engine: docker.Engine, run: Run, say) -> str:
    image = s.image or runtimes.default_runtime_image(runtime.version, s.arch)
    docker.ensure_image(run, image, "runtime image", "RUNTIME_IMAGE", say)
    project = checkout_id(s.kit_dir)
    tag = f"lambda-kit-smoke/{project}:{runtime.cpython_tag}-{s.arch}"
    log_path = s.state_dir / "smoke-build.log"
    log_path.write_text("", encoding="utf-8")
    network = s.network or NetworkSettings()
    with tempfile.TemporaryDirectory(prefix="lambda-kit-smoke-") as tmp:
        ctx = Path(tmp) / "context"
        stage_smoke(ctx, kit_dir=s.kit_dir, buildkit=engine.buildkit, network=network)
        request = docker.BuildRequest(
            context=ctx,
            tag=tag,
            build_args={"RUNTIME_IMAGE": image},
            labels={docker.LABEL: "lambda-kit", docker.CHECKOUT_LABEL: project},
            secrets=secret_files(Path(tmp), network) if engine.buildkit else {},
            platform="linux/arm64" if s.arch == "arm64" else None,
        )
        argv, env = docker.build_command(engine, request)
        try:
            run(argv, log_file=log_path, env=env)
        except CommandFailed as exc:
            raise build_failure(log_path, exc) from None
    say(reporter.line(f"smoke image {tag} on {image}"))
    return tag


def smoke(s: SmokeSettings, run: Run, say: Callable[[str], None]) -> dict:
    runtime = runtimes.lookup(s.runtime)
    if not s.zip.is_file():
        raise UsageError("no zip to run", str(s.zip), hint="build it first: make package")
    if s.event is not None:
        try:
            json.loads(s.event.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(
                "cannot read the event file", f"{s.event}: {exc.strerror}", hint="set EVENT to a JSON file"
            ) from None
        except ValueError as exc:
            raise UsageError(
                "the event file is not JSON", f"{s.event}: {exc}", hint="set EVENT to a JSON file"
            ) from None
    audit_first(s)
    s.state_dir.mkdir(parents=True, exist_ok=True)
    engine, why_not = docker.probe(run)
    if engine is None:
        from lambda_kit.smoke import hostsmoke

        if not hostsmoke.can_run(runtime, s.arch):
            docker.preflight(run)  # no engine, and this host cannot stand in: docker's own error
        started = time.monotonic()
        report = hostsmoke.smoke_on_host(s, why_not, say)
        report["seconds"] = round(time.monotonic() - started, 1)
        return report
    tag = smoke_image(s, runtime, engine, run, say)

    labels = {docker.LABEL: "lambda-kit", docker.CHECKOUT_LABEL: checkout_id(s.kit_dir)}
    options = ("--user", "0:0", "--env", f"LAMBDA_KIT_FUNCTION_NAME={s.zip.stem}")
    command = ("python3", RUNNER, s.handler, str(s.timeout))
    with tempfile.TemporaryDirectory(prefix="smoke-") as tmp:
        event = Path(tmp) / "event.json"
        event.write_bytes(s.event.read_bytes() if s.event else b"{}")
        started = time.monotonic()
        with docker.ContainerSession(
            run, tag, labels, name_prefix="lambda-kit-smoke", command=command, options=options
        ) as box:
            box.copy_in(s.zip, "/tmp/lambda-kit-smoke/function.zip")
            box.copy_in(event, "/tmp/lambda-kit-smoke/event.json")
            output = box.start_attached(timeout=s.timeout + 120)
            for line in output.splitlines():
                say(line)  # the handler's own logs: never the report
            try:
                box.copy_out(REPORT_FILE, Path(tmp) / "report.json")
            except CommandFailed:
                raise KitError(
                    "the smoke container gave no report",
                    " | ".join(output.splitlines()[-3:]),
                    hint="run with LAMBDA_KIT_DEBUG=1",
                ) from None
        report = read_report(Path(tmp) / "report.json")
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def audit_first(s: SmokeSettings) -> None:
    """The zip is audited (bounded, every entry inflated) before anything runs: errors stop the run."""
    report = audit.audit_zip(s.zip, runtime=s.runtime, arch=s.arch, handler=s.handler)
    if report.errors:
        first = next(f for f in report.findings if f.severity == audit.ERROR)
        raise KitError(
            f"the zip failed the audit with {report.errors} error(s), first: {first.id}",
            first.line().split(None, 2)[2],
            hint=f"{first.hint} (make check lists them all); nothing was run",
        )
