"""The dependencies built in Docker: the engine and its build image made ready, the context staged,
`docker build`, then create / cp the image's out/ folder / rm (always), and this checkout's old
images pruned. A failed build is said as the kit's own error line from the build log."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from lambda_kit.builders import context, docker
from lambda_kit.builders.runner import Run
from lambda_kit.common import contract, reporter, runtimes
from lambda_kit.common.errors import CommandFailed, KitError, UsageError
from lambda_kit.plan.buildplan import BuildPlan
from lambda_kit.plan.network import NetworkSettings
from lambda_kit.plan.network import secret_files as network_secrets


def failure(log_path: Path, exc: CommandFailed) -> KitError:
    """The kit's own error line from the build log when a kit step failed, else docker's last lines."""
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else exc.output
    found = contract.parse_error(text)
    if found:
        return KitError(found[0], hint=found[1] or "").with_log(log_path)
    tail = " | ".join(exc.tail[-3:])
    return KitError("docker build failed", tail, hint=f"the full log is in {log_path}")


def ready(plan: BuildPlan, network: NetworkSettings, engine: docker.Engine, run: Run, say) -> str:
    """The engine's line said, its build image on it (pulled if missing, else ImageUnavailable): its name."""
    s, runtime = plan.settings, plan.runtime
    # Another architecture than the engine's: no emulation is assumed. The build image of the
    # engine's architecture installs binary wheels for the target (pip --platform ...).
    cross = s.arch != engine.arch
    base_image = s.base_image or runtimes.default_build_image(runtime.version, engine.arch if cross else s.arch)
    if network.has_credentials() and not engine.buildkit:
        raise UsageError(
            "index credentials would be stored in the image's layers by the legacy builder",
            "; ".join(network.credential_shapes()),
            hint="build with BuildKit (DOCKER_BUILDKIT=1 with a docker that has it), which passes them as secrets",
        )
    mode = f", cross-installing {s.arch} wheels on {engine.arch}" if cross else ""
    engine_line = f"docker {engine.server_version} ({engine.builder_name}), {runtime.name} {s.arch}, base {base_image}"
    say(reporter.line(f"{engine_line}{mode}"))
    docker.ensure_image(
        run, base_image, "build image", "BASE_IMAGE", say, alternative=", or build without Docker: BUILDER=local"
    )
    return base_image


def build(
    plan: BuildPlan,
    network: NetworkSettings,
    outputs: Path,
    log_path: Path,
    run: Run,
    say,
    engine: docker.Engine | None = None,
    base_image: str | None = None,
) -> None:
    """docker build, then create / cp the image's out/ folder to `outputs` / rm, and prune this
    checkout's old images. `base_image`: ready's answer, when the caller asked it already."""
    s, runtime = plan.settings, plan.runtime
    engine = engine or docker.preflight(run)
    cross = s.arch != engine.arch
    base_image = base_image or ready(plan, network, engine, run, say)

    labels = {docker.LABEL: "lambda-kit", docker.CHECKOUT_LABEL: plan.checkout}
    with tempfile.TemporaryDirectory(prefix="lambda-kit-") as tmp:
        tmp_path = Path(tmp)
        ctx = tmp_path / "context"
        context.stage_build(
            ctx,
            kit_dir=s.kit_dir,
            pipfile=s.pipfile,
            lock=plan.lock,
            lock_json=plan.lock_bytes(),
            project_dir=plan.project_dir,
            buildkit=engine.buildkit,
            network=network,
            wheelhouse=plan.wheelhouse,
            profile=list(plan.profile),
        )
        build_args = contract.BuildArguments(
            base_image, runtime.version, s.slim, s.compile, s.arch if cross else "", s.fetch_mode()
        )
        request = docker.BuildRequest(
            context=ctx,
            tag=plan.tag,
            build_args=build_args.as_build_args(),
            # The Dockerfile labels every layer as the kit's; the final image also names its checkout
            # (one more step for the legacy builder per label, so only that one).
            labels={docker.CHECKOUT_LABEL: labels[docker.CHECKOUT_LABEL]},
            secrets=network_secrets(tmp_path, network) if engine.buildkit else {},
            network="host" if network.loopback() else None,  # an index or proxy on this machine's 127.0.0.1
        )
        argv, env = docker.build_command(engine, request)
        say(reporter.line(f"docker build {plan.tag} (log: {log_path})"))
        step = time.monotonic()
        try:
            run(argv, log_file=log_path, env=env)
        except CommandFailed as exc:
            raise failure(log_path, exc) from None
        say(reporter.line(f"image built in {time.monotonic() - step:.1f}s"))

    with docker.ContainerSession(run, plan.tag, labels) as container:
        container.copy_out(f"{contract.OUT}/.", outputs)
    say(reporter.line(f"build output copied out of container {container.name}, container removed"))
    docker.prune_superseded_images(run, plan.checkout)
