"""The packed dependencies (deps.zip) for a plan: from the machine's cache, else the fleet's shared
cache, else built (the lock checked first) by Docker or on the host, then kept in both caches.
BUILDER=auto takes a cached build of either builder, and builds with Docker when an engine answers,
else without, with the same bytes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lambda_kit.audit.auditstep import warm_up_audit
from lambda_kit.builders import docker, dockerbuild, localbuild
from lambda_kit.builders.progress import BuildProgress
from lambda_kit.builders.runner import Run
from lambda_kit.common import contract, diskspace, reporter, runtimes
from lambda_kit.common.errors import ImageUnavailable, KitError, UsageError
from lambda_kit.dependencies import sharedcache
from lambda_kit.dependencies.depcache import DependencyCache, keep_wheelhouse
from lambda_kit.dependencies.key import dependency_key
from lambda_kit.lock import lockcheck, lockfile, lockformats, lockmodel
from lambda_kit.plan import compiling
from lambda_kit.plan.buildplan import BuildPlan
from lambda_kit.steps import assemble


def disk_needed(plan: BuildPlan) -> int:
    """About what a build writes under KIT_STATE: the wheelhouse, then deps.zip three times (the
    build's copy, the cache's, the zip built from it)."""
    wheels = diskspace.folder_size(plan.wheelhouse)
    cached = [p.stat().st_size for p in (plan.settings.cache / "deps").glob("*.zip")]
    return wheels + 3 * (max(cached) if cached else wheels)


def dependencies(plan: BuildPlan, run: Run, say, early: lockcheck.PendingCheck | None = None) -> Path:
    """The cached deps.zip for this dependency key, building it when the cache lacks it.
    BUILDER=auto takes a cached build of either builder, and builds with Docker when an engine
    answers, else without."""
    s = plan.settings
    network = plan.build_network()  # the lock's ${VAR}s must be set whenever dependencies are needed
    s.state_dir.mkdir(parents=True, exist_ok=True)
    keep = DependencyCache.KEEP if s.cache_dir is None else DependencyCache.MACHINE_KEEP  # several projects share it
    cache = DependencyCache(s.cache, warn=lambda m: say(reporter.warning(m)), keep=keep)
    keys = {b: dependency_key(plan, b) for b in (("docker", "local") if s.builder == "auto" else (s.builder,))}
    shared, cached = None, None
    for key in keys.values():
        cached = None if s.fresh else cache.get(key)
        if cached is not None:
            say(reporter.line(f"dependencies unchanged (key {key[:12]}): adding the code to them, no build needed"))
            break
    else:
        shared = sharedcache.SharedCache.for_build(s, say, plan.native_facts)  # None without CACHE_URL
        if shared is not None and not s.fresh:
            cached = shared.lookup(keys.values(), cache, plan.lock, s.cache)
    if cached is not None:
        if early is not None:
            early.stop()  # no build: pipenv's check is not needed
        return cached
    # The lock is checked before any build: a stale lock never reaches Docker, nor a zip. The local
    # builder asks Docker nothing, so it downloads while pipenv computes the Pipfile's hash.
    s.fetch_mode()  # a bad LAMBDA_KIT_FETCH stops here, before any build
    check = early or lockcheck.start(plan.lock_choice)
    try:
        if s.builder != "local" or plan.lock_choice.format != lockformats.PIPFILE:  # only pipenv's takes long
            check.verify(plan.lock, say)
        return build(plan, network, cache, keys, shared, run, say, check)
    except KitError as exc:  # a step's hint names `pipenv lock`: the lock's own tool instead
        exc.hint = lockmodel.reworded(exc.hint, plan.lock_choice.format)
        raise
    finally:
        check.stop()


def build(plan: BuildPlan, network, cache, keys: dict, shared, run: Run, say, check) -> Path:
    s = plan.settings
    builder, engine, no_wheel_hint, unpulled, base_image = s.builder, None, None, None, None
    if builder == "auto":
        engine, why_not = docker.probe(run)
        builder = "local" if engine is None else "docker"
        if engine is None:
            say(reporter.line(f"no Docker engine ({why_not}): building without Docker, same bytes"))
            no_wheel_hint = NO_ENGINE_HINT
        else:
            try:
                base_image = dockerbuild.ready(plan, network, engine, run, say)
            except ImageUnavailable as exc:  # a lock with a wheel for everything builds without it
                if exc.problem == docker.INVALID_NAME:  # a typo in BASE_IMAGE is said, not built around
                    raise
                builder, unpulled, no_wheel_hint = "local", exc, NO_IMAGE_HINT
                say(
                    reporter.line(
                        f"the build image cannot be pulled ({exc.problem}: {exc.value}): "
                        "building without Docker, same bytes"
                    )
                )
        try:
            compiling.check(s, plan.runtime, builder)
        except UsageError as exc:  # COMPILE=1 this host cannot do: the image was needed after all
            raise (unpulled or exc) from None
    log_path = s.state_dir / "build.log"
    log_path.write_text("", encoding="utf-8")
    if network.pip.unused:
        say(
            reporter.line(
                "pip's settings not used (the lock decides what is installed, and from where): "
                f"{', '.join(network.pip.unused)}"
            )
        )
    total = package_count(plan.lock, plan.runtime, s.arch)
    with tempfile.TemporaryDirectory(prefix="lambda-kit-out-") as tmp, BuildProgress(log_path, total=total):
        outputs = Path(tmp) / "out"
        if builder == "local":
            target = f"{plan.runtime.name} {s.arch}"
            say(reporter.line(f"local build (no Docker), {target}, binary wheels only (log: {log_path})"))
            warm_up_audit()
            try:
                localbuild.build(plan, network, outputs, log_path, no_wheel_hint)
            except KitError as exc:
                check.verify(
                    plan.lock, say
                )  # a stale lock is the cause to report (checked already unless BUILDER=local)
                if unpulled is not None and NO_IMAGE_HINT in exc.hint:  # needs the image after all
                    hint = f"{docker.pull_hint(unpulled.value, 'BASE_IMAGE')}; without Docker: {exc.message}"
                    raise ImageUnavailable(unpulled.message, unpulled.value, hint, unpulled.problem) from None
                raise
            check.verify(plan.lock, say)
        else:
            dockerbuild.build(plan, network, outputs, log_path, run, say, engine, base_image)
            keep_wheelhouse(outputs / contract.WHEELS, plan.wheelhouse)
        packed = outputs / contract.DEPS_ZIP
        assemble.verify_copied(packed)
        stored = cache.put(keys[builder], packed)
        if shared is not None:
            shared.publish(keys[builder], packed, plan.wheelhouse, plan.lock, s.runtime, s.arch)
    return stored


NO_ENGINE_HINT = "Docker is needed for such packages: start a Docker engine (or set DOCKER_HOST) and build again"
NO_IMAGE_HINT = "Docker and its build image are needed for such packages"


def package_count(lock: lockfile.Lock, runtime: runtimes.Runtime, arch: str) -> int | None:
    """How many packages the build installs for the target (for the progress line)."""
    try:
        planned = lockfile.install_plan(lock, runtimes.target_environment(runtime, arch))
    except lockfile.LockError:
        return None
    return len(planned.index) + len(planned.local) + len(planned.urls)
