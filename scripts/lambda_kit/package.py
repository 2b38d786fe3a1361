"""`package`: settings resolved, zip built (or the code added to cached dependencies), checked, replaced.

1. resolve the settings into a BuildPlan (buildplan.py; no docker yet): a mistake fails in milliseconds
2. dependency key: with a cached deps.zip for it (local, else CACHE_URL's store), go to 6; after a build, push it
3. preflight: docker present, daemon answering, which builder, the engine's architecture
   (BUILDER=auto: no engine, build on the host instead)
4. stage the build context in a temporary folder; docker build (full log in <state>/build.log)
5. docker create -> docker cp the image's out/ folder -> docker rm --force (always);
   check deps.zip against its digest, keep it in the cache and the downloads in the wheelhouse
6. add the code to deps.zip on the host (assemble.build_zip, the one route to the zip), audit
   it, then os.replace it over the old one: a failure never touches the last good zip
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lambda_kit.steps import assemble
from lambda_kit.plan import compiling
from lambda_kit.common import contract, diskspace, runtimes
from lambda_kit.builders import docker, localbuild
from lambda_kit.lock import lockcheck, lockfile, lockformats
from lambda_kit.code import secretscan, sources
from lambda_kit.dependencies import sharedcache
from lambda_kit.steps import wheelfetch
from lambda_kit.zips import zipwriter
from lambda_kit.audit.auditstep import audit_as_built, check_zip, warm_up_audit
from lambda_kit.plan.buildplan import BuildPlan, PackageSettings, resolve
from lambda_kit.builders.context import PATH_DEPENDENCY_SKIPPED_PARTS, image_modules, stage
from lambda_kit.dependencies.depcache import DependencyCache, keep_wheelhouse
from lambda_kit.common.digests import sha256_file
from lambda_kit.common.errors import ImageUnavailable, KitError, UsageError
from lambda_kit.net.network import NetworkSettings, secret_files
from lambda_kit.outputs import OutputRecords, out_folder, publish
from lambda_kit.builders.progress import BuildProgress
from lambda_kit.builders.runner import CommandFailed, Run

__all__ = ["PackageSettings", "PackageResult", "build_layer", "package", "prepare_dependencies"]


@dataclass
class PackageResult:
    path: Path
    size: int
    files: int
    sha256: str
    code_sha256: str
    seconds: float

    @classmethod
    def of(cls, path: Path, files: int, digest: bytes, started: float) -> PackageResult:
        """The result for the zip now at `path`, whose SHA-256 is `digest`."""
        return cls(
            path,
            path.stat().st_size,
            files,
            digest.hex(),
            base64.b64encode(digest).decode(),
            time.monotonic() - started,
        )

    def summary_lines(self) -> list[str]:
        return [
            f"lambda-kit: wrote {self.path} ({self.size:,} bytes, {self.files} files) in {self.seconds:.1f}s",
            f"  sha256      {self.sha256}",
            f"  CodeSha256  {self.code_sha256}",
        ]


def build_failure(log_path: Path, exc: CommandFailed) -> KitError:
    """The kit's own error line from the build log when a kit step failed, else docker's last lines."""
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else exc.output
    found = contract.parse_error(text)
    if found:
        return KitError(found[0], hint=found[1] or "").with_log(log_path)
    tail = " | ".join(exc.tail[-3:])
    return KitError("docker build failed", tail, hint=f"the full log is in {log_path}")


def dependency_key(plan: BuildPlan, builder: str) -> str:
    """What the dependency part of the zip depends on: the Pipfile and lock, local path
    dependencies, the kit's in-container code and tools, the builder, runtime, architecture and
    base image. Index URLs are left out: the lock's hashes pin the files whatever their source."""
    s, digest = plan.settings, hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode() + data)

    add(
        "builder",
        f"{builder} {plan.runtime.version} {s.arch} {s.base_image} slim={s.slim} compile={s.compile}".encode(),
    )
    add("Pipfile", plan.project_bytes())
    add("profile", "\n".join(plan.profile).encode())
    add("Pipfile.lock", plan.lock_path.read_bytes())
    if plan.lock_choice.format != lockformats.PIPFILE:  # what was read of it for this target and selection
        add("lock model", plan.lock_bytes())
    for name in (
        "Dockerfile",
        "scripts/container-requirements.txt",
        *image_modules(s.kit_dir),
    ):
        add(name, (s.kit_dir / name).read_bytes())
    default = plan.lock.get("default", {}).values()
    for entry in sorted((e["path"] for e in default if isinstance(e, dict) and "path" in e)):
        local = (plan.project_dir / entry).resolve()
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file() and not _ignored(p))
        for path in files:
            add(f"path:{entry}:{path.relative_to(local.parent)}", path.read_bytes())
    return digest.hexdigest()


def _ignored(path: Path) -> bool:
    """What the build context leaves out of a local path dependency (context.PATH_DEPENDENCY_SKIPPED)."""
    return (
        bool(PATH_DEPENDENCY_SKIPPED_PARTS & set(path.parts))
        or path.suffix in (".pyc", ".pyo")
        or any(part.endswith(".egg-info") for part in path.parts)
    )


def package(s: PackageSettings, run: Run, say: Callable[[str], None]) -> PackageResult:
    started = time.monotonic()
    plan = resolve(s)
    for warning in plan.warnings:
        say(f"lambda-kit: warning: {warning}")
    # BUILDER=local needs the lock's check only once its own build is done: pipenv starts now, on
    # another core (stopped at once when the dependencies turn out to be cached).
    early = lockcheck.start(plan.lock_choice) if s.include_deps and s.builder == "local" else None
    try:
        with diskspace.guard("building the zip", [s.state_dir, s.cache, Path(tempfile.gettempdir()), s.out.parent],
                             lambda: disk_needed(plan)):  # fmt: skip
            return _package(s, plan, run, say, started, early)
    finally:
        if early is not None:
            early.stop()


def disk_needed(plan: BuildPlan) -> int:
    """About what a build writes under KIT_STATE: the wheelhouse, then deps.zip three times (the
    build's copy, the cache's, the zip built from it)."""
    wheels = diskspace.folder_size(plan.wheelhouse)
    cached = [p.stat().st_size for p in (plan.settings.cache / "deps").glob("*.zip")]
    return wheels + 3 * (max(cached) if cached else wheels)


def _package(s: PackageSettings, plan: BuildPlan, run: Run, say, started: float, early) -> PackageResult:
    records = OutputRecords(s.state_dir)
    records.check_replaceable(s.out)
    out_folder(s.out)
    staging = Path(tempfile.mkdtemp(prefix="package-"))  # in the run's folder (tempdirs)
    try:
        fresh = staging / s.out.name
        code = staging / "code"
        selection = sources.stage(s.source_rules(), code)  # the one answer to what of SRC ships, before any build
        secretscan.refuse_secrets([(name, code / name) for name, _, _ in selection.files])
        if s.include_deps:
            packed = dependencies(plan, run, say, early)
        else:
            packed = None
            say("lambda-kit: the code only (its dependencies come from a layer), no build needed")
        digest = assemble.build_zip(
            packed,
            code,
            staging,
            fresh,
            s.source_date_epoch,
            compile_handler=compiling.code_handler(s, say),
            profile=list(plan.profile),
        )
        report = check_zip(fresh, plan, say)
        publish(fresh, s.out)
        records.record(s.out, digest.hex())  # never raises
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PackageResult.of(s.out, report.files, digest, started)


def dependencies(plan: BuildPlan, run: Run, say, early: lockcheck.PendingCheck | None = None) -> Path:
    """The cached deps.zip for this dependency key, building it when the cache lacks it.
    BUILDER=auto takes a cached build of either builder, and builds with Docker when an engine
    answers, else without."""
    s = plan.settings
    network = plan.build_network()  # the lock's ${VAR}s must be set whenever dependencies are needed
    s.state_dir.mkdir(parents=True, exist_ok=True)
    keep = DependencyCache.KEEP if s.cache_dir is None else DependencyCache.MACHINE_KEEP  # several projects share it
    cache = DependencyCache(s.cache, warn=lambda m: say(f"lambda-kit: warning: {m}"), keep=keep)
    keys = {b: dependency_key(plan, b) for b in (("docker", "local") if s.builder == "auto" else (s.builder,))}
    shared, cached = None, None
    for key in keys.values():
        cached = None if s.fresh else cache.get(key)
        if cached is not None:
            say(f"lambda-kit: dependencies unchanged (key {key[:12]}): adding the code to them, no build needed")
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
    wheelfetch.setting(os.environ)  # a bad LAMBDA_KIT_FETCH stops here, before any build
    check = early or lockcheck.start(plan.lock_choice)
    try:
        if s.builder != "local" or plan.lock_choice.format != lockformats.PIPFILE:  # only pipenv's takes long
            check.verify(plan.lock, say)
        return build_dependencies(plan, network, cache, keys, shared, run, say, check)
    except KitError as exc:  # a step's hint names `pipenv lock`: the lock's own tool instead
        exc.hint = lockformats.reworded(exc.hint, plan.lock_choice.format)
        raise
    finally:
        check.stop()


def build_dependencies(plan: BuildPlan, network, cache, keys: dict, shared, run: Run, say, check) -> Path:
    s = plan.settings
    builder, engine, no_wheel_hint, unpulled, base_image = s.builder, None, None, None, None
    if builder == "auto":
        engine, why_not = docker.probe(run)
        builder = "local" if engine is None else "docker"
        if engine is None:
            say(f"lambda-kit: no Docker engine ({why_not}): building without Docker, same bytes")
            no_wheel_hint = NO_ENGINE_HINT
        else:
            try:
                base_image = docker_ready(plan, network, engine, run, say)
            except ImageUnavailable as exc:  # a lock with a wheel for everything builds without it
                if exc.problem == docker.INVALID_NAME:  # a typo in BASE_IMAGE is said, not built around
                    raise
                builder, unpulled, no_wheel_hint = "local", exc, NO_IMAGE_HINT
                say(f"lambda-kit: the build image cannot be pulled ({exc.problem}: {exc.value}): "
                    "building without Docker, same bytes")  # fmt: skip
        try:
            compiling.check(s, plan.runtime, builder)
        except UsageError as exc:  # COMPILE=1 this host cannot do: the image was needed after all
            raise (unpulled or exc) from None
    log_path = s.state_dir / "build.log"
    log_path.write_text("", encoding="utf-8")
    if network.pip.unused:
        say(
            f"lambda-kit: pip's settings not used (the lock decides what is installed, and from where): {', '.join(network.pip.unused)}"
        )
    total = package_count(plan.lock, plan.runtime, s.arch)
    with tempfile.TemporaryDirectory(prefix="lambda-kit-out-") as tmp, BuildProgress(log_path, total=total):
        outputs = Path(tmp) / "out"
        if builder == "local":
            target = f"{plan.runtime.name} {s.arch}"
            say(f"lambda-kit: local build (no Docker), {target}, binary wheels only (log: {log_path})")
            warm_up_audit()
            try:
                localbuild.build(
                    cache_dir=s.cache, lock_json=plan.lock_bytes(), project_dir=plan.project_dir,
                    runtime=plan.runtime, arch=s.arch,
                    network=network, out=outputs, wheelhouse=plan.wheelhouse, log_path=log_path, slim=s.slim,
                    no_wheel_hint=no_wheel_hint, compile_deps=s.compile, profile=list(plan.profile),
                )  # fmt: skip
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
            build_in_docker(plan, network, outputs, log_path, run, say, engine, base_image)
            keep_wheelhouse(outputs / contract.WHEELS, plan.wheelhouse)
        packed = outputs / contract.DEPS_ZIP
        assemble.verify_copied(packed)
        stored = cache.put(keys[builder], packed)
        if shared is not None:
            shared.publish(keys[builder], packed, plan.wheelhouse, plan.lock, s.runtime, s.arch)
    return stored


NO_ENGINE_HINT = "Docker is needed for such packages: start a Docker engine (or set DOCKER_HOST) and build again"
NO_IMAGE_HINT = "Docker and its build image are needed for such packages"


def package_count(lock: dict, runtime: runtimes.Runtime, arch: str) -> int | None:
    """How many packages the build installs for the target (for the progress line)."""
    try:
        planned = lockfile.plan(lock, runtimes.target_environment(runtime, arch))
    except lockfile.LockError:
        return None
    return len(planned.index) + len(planned.local) + len(planned.urls)


def prepare_dependencies(s: PackageSettings, run: Run, say: Callable[[str], None]) -> Path:
    """Make sure the cache holds deps.zip for the current lock and settings (several functions
    then share that one build)."""
    return dependencies(resolve(s, need_handler=False), run, say)


def build_layer(s: PackageSettings, run: Run, say: Callable[[str], None]) -> PackageResult:
    """A Lambda layer zip: the same dependencies, under python/, copied compressed from deps.zip."""
    started = time.monotonic()
    records = OutputRecords(s.state_dir)
    records.check_replaceable(s.out, setting="DIST")
    plan = resolve(s, need_handler=False)
    packed = dependencies(plan, run, say)
    out_folder(s.out)
    staging = Path(tempfile.mkdtemp(prefix="layer-"))
    try:
        fresh = staging / s.out.name
        entries = [zipwriter.Entry("python/", None, 0o755)] + [
            zipwriter.Entry(f"python/{e.name}", e.source, e.mode, e.packed)
            for e in zipwriter.collect_zip(packed).values()
        ]
        zipwriter.write_zip(sorted(entries, key=lambda e: e.name), fresh, zipwriter.zip_date_time(s.source_date_epoch))
        report = audit_as_built(fresh, plan, say)
        for finding in report.findings:
            say(f"lambda-kit: audit: {finding.line()}")
        if report.errors:
            raise KitError("the layer failed the audit", report.findings[0].message, hint=report.findings[0].hint)
        digest = sha256_file(fresh)
        publish(fresh, s.out)
        records.record(s.out, digest.hex())  # never raises
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PackageResult.of(s.out, report.files, digest, started)


def docker_ready(plan: BuildPlan, network: NetworkSettings, engine: docker.Engine, run: Run, say) -> str:
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
    say(f"lambda-kit: {engine_line}{mode}")
    docker.ensure_image(
        run, base_image, "build image", "BASE_IMAGE", say, alternative=", or build without Docker: BUILDER=local"
    )
    return base_image


def build_in_docker(
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
    checkout's old images. `base_image`: docker_ready's answer, when the caller asked it already."""
    s, runtime = plan.settings, plan.runtime
    engine = engine or docker.preflight(run)
    cross = s.arch != engine.arch
    base_image = base_image or docker_ready(plan, network, engine, run, say)

    labels = {docker.LABEL: "lambda-kit", docker.CHECKOUT_LABEL: plan.checkout}
    with tempfile.TemporaryDirectory(prefix="lambda-kit-") as tmp:
        tmp_path = Path(tmp)
        ctx = tmp_path / "context"
        stage(
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
        build_args = contract.BuildArguments(base_image, runtime.version, s.slim, s.compile, s.arch if cross else "",
                                             wheelfetch.setting(os.environ))  # fmt: skip
        request = docker.BuildRequest(
            context=ctx,
            tag=plan.tag,
            build_args=build_args.as_build_args(),
            # The Dockerfile labels every layer as the kit's; the final image also names its checkout
            # (one more step for the legacy builder per label, so only that one).
            labels={docker.CHECKOUT_LABEL: labels[docker.CHECKOUT_LABEL]},
            secrets=secret_files(tmp_path, network) if engine.buildkit else {},
            network="host" if network.loopback() else None,  # an index or proxy on this machine's 127.0.0.1
        )
        argv, env = docker.build_command(engine, request)
        say(f"lambda-kit: docker build {plan.tag} (log: {log_path})")
        step = time.monotonic()
        try:
            run(argv, log_file=log_path, env=env)
        except CommandFailed as exc:
            raise build_failure(log_path, exc) from None
        say(f"lambda-kit: image built in {time.monotonic() - step:.1f}s")

    with docker.ContainerSession(run, plan.tag, labels) as container:
        container.copy_out(f"{contract.OUT}/.", outputs)
    say(f"lambda-kit: build output copied out of container {container.name}, container removed")
    docker.prune_superseded_images(run, plan.checkout)
