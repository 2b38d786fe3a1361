"""`package`: settings checked, zip built (or the code added to cached dependencies), checked, replaced.

1. check the settings and files (no docker yet): a mistake fails in milliseconds
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
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from . import (
    assemble,
    audit,
    compiling,
    contract,
    docker,
    localbuild,
    lockfile,
    runtimes,
    secretscan,
    sharedcache,
    sources,
    zipwriter,
)
from .outputs import OutputRecords, out_folder, publish
from .progress import BuildProgress
from .depcache import DependencyCache, keep_wheelhouse
from .context import (
    CONTAINER_MODULES,
    PATH_DEPENDENCY_SKIPPED_PARTS,
    NetworkSettings,
    lock_source_variables,
    secret_files,
    stage,
)
from .errors import KitError, UsageError
from .runner import CommandFailed, Run

BUILDERS = ("auto", "docker", "local")
HANDLER_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\.[A-Za-z_]\w*$")


@dataclass
class PackageSettings:
    kit_dir: Path
    pipfile: Path
    src: Path
    out: Path
    state_dir: Path
    runtime: str = "3.12"
    arch: str = "x86_64"
    handler: str = "app.handler"
    base_image: str = ""
    network: NetworkSettings = field(default_factory=NetworkSettings)
    source_date_epoch: str | None = None
    builder: str = "auto"  # docker when an engine answers, else local; or "docker" / "local", no fallback
    fresh: bool = False  # ignore the dependency cache (make -B)
    include_deps: bool = True  # False: the code only, for a function whose dependencies are in a layer
    layers: list[Path] = field(default_factory=list)  # layer zips the audit counts (size, lock)
    slim: bool = False  # SLIM=1: drop what never runs, strip native files
    cache_url: str = ""  # CACHE_URL: a store shared by several agents (s3://bucket/prefix or a folder)
    cache_push: bool = True  # CACHE_PUSH=0: read the shared store, never write it
    compile: bool = False  # COMPILE=1: hash-based .pyc for what the function imports (bytecode.py)
    compile_profile: Path | None = None  # modules a `make profile` run recorded, compiled too

    def profile(self) -> list[str]:
        return compiling.profile(self)

    sources: sources.SourceRules | None = None  # what of src goes into the zip (None: the defaults)

    def source_rules(self) -> sources.SourceRules:
        return self.sources or sources.SourceRules(
            self.src, self.pipfile.parent, self.kit_dir, self.state_dir, self.out
        )


@dataclass
class PackageResult:
    path: Path
    size: int
    files: int
    sha256: str
    code_sha256: str
    seconds: float

    def summary_lines(self) -> list[str]:
        return [
            f"lambda-kit: wrote {self.path} ({self.size:,} bytes, {self.files} files) in {self.seconds:.1f}s",
            f"  sha256      {self.sha256}",
            f"  CodeSha256  {self.code_sha256}",
        ]


def checkout_id(project_dir: Path) -> str:
    """Stable per checkout folder, so parallel jobs on one engine get their own image tags."""
    return hashlib.sha256(str(project_dir.resolve()).encode()).hexdigest()[:12]


def image_tag(project_dir: Path, runtime: runtimes.Runtime, arch: str) -> str:
    """Valid for Docker whatever the folder is called (mixed separators, dots, non-ASCII, length)."""
    slug = docker.reference_component(project_dir.resolve().name)
    return f"lambda-kit/{slug}:{checkout_id(project_dir)}-{runtime.cpython_tag}-{arch}"


def handler_module_paths(handler: str) -> list[str]:
    """Zip names where the handler's module may live: a/b.py or a/b/__init__.py."""
    module = handler.rsplit(".", 1)[0].replace(".", "/")
    return [f"{module}.py", f"{module}/__init__.py"]


def check_settings(
    s: PackageSettings, today: date | None = None, need_handler: bool = True
) -> tuple[runtimes.Runtime, dict, list[str]]:
    """Everything that can be wrong before docker runs. Returns the runtime, the lock and warnings."""
    warnings = []
    runtime = runtimes.lookup(s.runtime)
    if tuple(map(int, runtime.version.split("."))) < runtimes.OLDEST_BUILDABLE:
        raise UsageError(
            f"{runtime.name} is deprecated on Lambda and the kit's pinned pipenv cannot run on it",
            runtime.name,
            hint="move the function to python3.12 or newer",
        )
    if runtime.deprecated_on(today or date.today()):
        warnings.append(
            f"{runtime.name} is deprecated on Lambda since {runtime.deprecation}: plan a move to a newer runtime"
        )
    if s.builder not in BUILDERS:
        raise UsageError("unknown builder", s.builder, hint="use BUILDER=auto (the default), docker or local")
    compiling.check(s, runtime)
    if s.arch not in runtimes.ARCHITECTURES:
        raise UsageError("unknown architecture", s.arch, hint="use x86_64 or arm64")
    if not HANDLER_PATTERN.match(s.handler):
        raise UsageError(
            "the handler is not of the form module.function", s.handler, hint="e.g. app.handler or pkg.api.handler"
        )
    if not s.pipfile.is_file():
        raise UsageError(
            "no Pipfile",
            str(s.pipfile),
            hint="run make in the folder that holds the Pipfile, or set PIPFILE (`pipenv lock` writes Pipfile and lock)",
        )
    lock_path = s.pipfile.with_name(s.pipfile.name + ".lock")
    lock = lockfile.load(lock_path)
    lockfile.plan(lock, runtimes.target_environment(runtime, s.arch))  # unpinned or hashless: before docker
    if need_handler and not s.src.is_dir():
        raise UsageError(
            "the source folder does not exist", str(s.src), hint="set SRC to the folder that holds your handler"
        )
    has_local_paths = any(isinstance(e, dict) and "path" in e for e in lock.get("default", {}).values())
    if need_handler and not has_local_paths and not any((s.src / p).is_file() for p in handler_module_paths(s.handler)):
        raise UsageError(
            "the handler's module is not in the source folder",
            f"{s.handler}: no {' or '.join(handler_module_paths(s.handler))} in {s.src}",
            hint="set HANDLER to module.function relative to the source folder",
        )
    if s.out.is_dir():
        raise UsageError("the output path is a folder", str(s.out), hint="set ZIP to a file name such as build.zip")
    ca = s.network.ca_bundle
    if ca is not None:
        try:
            pem = ca.read_bytes()
        except OSError as exc:
            raise UsageError(
                "cannot read the CA bundle", f"{ca}: {exc.strerror}", hint="set CA_BUNDLE to a PEM file"
            ) from None
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise UsageError("the CA bundle has no PEM certificate", str(ca), hint="set CA_BUNDLE to a PEM file")
    zipwriter.zip_date_time(s.source_date_epoch)  # a UsageError when SOURCE_DATE_EPOCH is not a number
    return runtime, lock, warnings


def build_failure(log_path: Path, exc: CommandFailed) -> KitError:
    """The kit's own error line from the build log when a kit step failed, else docker's last lines."""
    text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else exc.output
    found = contract.parse_error(text)
    if found:
        return KitError(found[0], hint=found[1] or "").with_log(log_path)
    tail = " | ".join(exc.tail[-3:])
    return KitError("docker build failed", tail, hint=f"the full log is in {log_path}")


def check_zip(
    path: Path, s: PackageSettings, lock: dict, say: Callable[[str], None], digest: bytes
) -> tuple[audit.Report, bytes]:
    """The full audit of the zip this process wrote (`digest` is its SHA-256): an error fails the
    build before the old zip is replaced. Returns the report and the digest."""
    report = audit.audit_zip(
        path, runtime=s.runtime, arch=s.arch, handler=s.handler, lock=lock, layers=s.layers,
        native_cache=s.state_dir / "audit-native.json", inflate_all=False, warn=lambda m: say(f"lambda-kit: warning: {m}"),
    )  # fmt: skip
    for finding in report.findings:
        say(f"lambda-kit: audit: {finding.line()}")
        say(f"lambda-kit: audit:         hint: {finding.hint}")
    if report.errors:
        first = next(f for f in report.findings if f.severity == audit.ERROR)
        raise KitError(
            f"the zip failed the audit with {report.errors} error(s), first: {first.id}",
            first.message,
            hint=f"{first.hint}; the previous zip is untouched",
        )
    say(f"lambda-kit: audit passed ({report.warnings} warnings)")
    return report, digest


def dependency_key(s: PackageSettings, runtime: runtimes.Runtime, lock: dict, builder: str) -> str:
    """What the dependency part of the zip depends on: the Pipfile and lock, local path
    dependencies, the kit's in-container code and tools, the builder, runtime, architecture and
    base image. Index URLs are left out: the lock's hashes pin the files whatever their source."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode() + data)

    add("builder", f"{builder} {runtime.version} {s.arch} {s.base_image} slim={s.slim} compile={s.compile}".encode())
    add("Pipfile", s.pipfile.read_bytes())
    add("profile", "\n".join(s.profile()).encode())
    add("Pipfile.lock", s.pipfile.with_name(s.pipfile.name + ".lock").read_bytes())
    for name in (
        "Dockerfile",
        "scripts/container-requirements.txt",
        *(f"scripts/lambda_kit/{m}" for m in CONTAINER_MODULES),
    ):
        add(name, (s.kit_dir / name).read_bytes())
    for entry in sorted((e["path"] for e in lock.get("default", {}).values() if isinstance(e, dict) and "path" in e)):
        local = (s.pipfile.parent / entry).resolve()
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
    runtime, lock, warnings = check_settings(s)
    for warning in warnings:
        say(f"lambda-kit: warning: {warning}")
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
            packed = dependencies(s, runtime, lock, run, say)
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
            profile=s.profile(),
        )
        report, digest = check_zip(fresh, s, lock, say, digest)
        size = fresh.stat().st_size
        publish(fresh, s.out)
        records.record(s.out, digest.hex())  # never raises
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PackageResult(
        path=s.out,
        size=size,
        files=report.files,
        sha256=digest.hex(),
        code_sha256=base64.b64encode(digest).decode(),
        seconds=time.monotonic() - started,
    )


def dependencies(s: PackageSettings, runtime: runtimes.Runtime, lock: dict, run: Run, say) -> Path:
    """The cached deps.zip for this dependency key, building it when the cache lacks it.
    BUILDER=auto takes a cached build of either builder, and builds with Docker when an engine
    answers, else without."""
    s.network.lock_source_env = lock_source_variables(lock, dict(os.environ))
    s.state_dir.mkdir(parents=True, exist_ok=True)
    cache = DependencyCache(s.state_dir, warn=lambda m: say(f"lambda-kit: warning: {m}"))
    keys = {
        b: dependency_key(s, runtime, lock, b) for b in (("docker", "local") if s.builder == "auto" else (s.builder,))
    }
    for key in keys.values():
        cached = None if s.fresh else cache.get(key)
        if cached is not None:
            say(f"lambda-kit: dependencies unchanged (key {key[:12]}): adding the code to them, no build needed")
            return cached
    shared = sharedcache.SharedCache.for_build(s, say, s.state_dir / "audit-native.json")  # None without CACHE_URL
    if (
        shared is not None
        and not s.fresh
        and (cached := shared.lookup(keys.values(), cache, lock, s.state_dir)) is not None
    ):
        return cached
    builder, engine, no_wheel_hint = s.builder, None, None
    if builder == "auto":
        engine, why_not = docker.probe(run)
        builder = "local" if engine is None else "docker"
        compiling.check(s, runtime, builder)
        if engine is None:
            say(f"lambda-kit: no Docker engine ({why_not}): building without Docker, same bytes")
            no_wheel_hint = (
                "Docker is needed for such packages: start a Docker engine (or set DOCKER_HOST) and build again"
            )
    log_path = s.state_dir / "build.log"
    log_path.write_text("", encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="lambda-kit-out-") as tmp, \
            BuildProgress(log_path, total=package_count(lock, runtime, s.arch)):  # fmt: skip
        outputs = Path(tmp) / "out"
        if builder == "local":
            say(f"lambda-kit: local build (no Docker), {runtime.name} {s.arch}, binary wheels only (log: {log_path})")
            localbuild.build(
                kit_dir=s.kit_dir, state_dir=s.state_dir, pipfile=s.pipfile, runtime=runtime, arch=s.arch,
                network=s.network, out=outputs, wheelhouse=s.state_dir / "wheelhouse", log_path=log_path,
                run=run, slim=s.slim, no_wheel_hint=no_wheel_hint, compile_deps=s.compile, profile=s.profile(),
            )  # fmt: skip
        else:
            build_in_docker(s, runtime, lock, outputs, log_path, run, say, engine)
            keep_wheelhouse(outputs / contract.WHEELS, s.state_dir / "wheelhouse")
        packed = outputs / contract.DEPS_ZIP
        assemble.verify_copied(packed)
        stored = cache.put(keys[builder], packed)
        if shared is not None:
            shared.publish(keys[builder], packed, s.state_dir / "wheelhouse", lock, s.runtime, s.arch)
    return stored


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
    runtime, lock, _ = check_settings(s, need_handler=False)
    return dependencies(s, runtime, lock, run, say)


def build_layer(s: PackageSettings, run: Run, say: Callable[[str], None]) -> PackageResult:
    """A Lambda layer zip: the same dependencies, under python/, copied compressed from deps.zip."""
    started = time.monotonic()
    records = OutputRecords(s.state_dir)
    records.check_replaceable(s.out, setting="DIST")
    packed = prepare_dependencies(s, run, say)
    out_folder(s.out)
    staging = Path(tempfile.mkdtemp(prefix="layer-"))
    try:
        fresh = staging / s.out.name
        entries = [zipwriter.Entry("python/", None, 0o755)] + [
            zipwriter.Entry(f"python/{e.name}", e.source, e.mode, e.packed)
            for e in zipwriter.collect_zip(packed).values()
        ]
        zipwriter.write_zip(sorted(entries, key=lambda e: e.name), fresh, zipwriter.zip_date_time(s.source_date_epoch))
        report = audit.audit_zip(fresh, runtime=s.runtime, arch=s.arch, native_cache=s.state_dir / "audit-native.json",
                                 inflate_all=False, warn=lambda m: say(f"lambda-kit: warning: {m}"))  # fmt: skip
        for finding in report.findings:
            say(f"lambda-kit: audit: {finding.line()}")
        if report.errors:
            raise KitError("the layer failed the audit", report.findings[0].message, hint=report.findings[0].hint)
        data = fresh.read_bytes()
        digest = hashlib.sha256(data).digest()
        publish(fresh, s.out)
        records.record(s.out, digest.hex())  # never raises
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PackageResult(s.out, len(data), report.files, digest.hex(), base64.b64encode(digest).decode(),
                         time.monotonic() - started)  # fmt: skip


def build_in_docker(
    s: PackageSettings,
    runtime: runtimes.Runtime,
    lock: dict,
    outputs: Path,
    log_path: Path,
    run: Run,
    say,
    engine: docker.Engine | None = None,
) -> None:
    """docker build, then create / cp the image's out/ folder to `outputs` / rm, and prune this
    checkout's old images."""
    network = s.network
    engine = engine or docker.preflight(run)
    # Another architecture than the engine's: no emulation is assumed. The build image of the
    # engine's architecture installs binary wheels for the target (pip --platform ...).
    cross = s.arch != engine.arch
    base_image = s.base_image or runtimes.default_build_image(runtime.version, engine.arch if cross else s.arch)
    if network.has_credentials() and not engine.buildkit:
        raise UsageError(
            "index credentials would be stored in `docker history` by the legacy builder",
            "credentials in INDEX_URL, EXTRA_INDEX_URLS or the lock's sources",
            hint="build with BuildKit (DOCKER_BUILDKIT=1 with a docker that has it), which passes them as secrets",
        )
    mode = f", cross-installing {s.arch} wheels on {engine.arch}" if cross else ""
    say(
        f"lambda-kit: docker {engine.server_version} ({engine.builder_name}), {runtime.name} {s.arch}, base {base_image}{mode}"
    )
    docker.ensure_image(
        run, base_image, "build image", "BASE_IMAGE", say, alternative=", or build without Docker: BUILDER=local"
    )

    project_dir = s.pipfile.parent
    tag = image_tag(project_dir, runtime, s.arch)
    labels = {docker.LABEL: "lambda-kit", docker.CHECKOUT_LABEL: checkout_id(project_dir)}
    with tempfile.TemporaryDirectory(prefix="lambda-kit-") as tmp:
        tmp_path = Path(tmp)
        ctx = tmp_path / "context"
        stage(ctx, kit_dir=s.kit_dir, pipfile=s.pipfile, lock=lock, buildkit=engine.buildkit,
              network=network, wheelhouse=s.state_dir / "wheelhouse", profile=s.profile())  # fmt: skip
        request = docker.BuildRequest(
            context=ctx,
            tag=tag,
            build_args=contract.BuildArguments(
                base_image, runtime.version, s.slim, s.compile, s.arch if cross else ""
            ).as_build_args(),
            labels=labels,
            secrets=secret_files(tmp_path, network) if engine.buildkit else {},
        )
        argv, env = docker.build_command(engine, request)
        say(f"lambda-kit: docker build {tag} (log: {log_path})")
        step = time.monotonic()
        try:
            run(argv, log_file=log_path, env=env)
        except CommandFailed as exc:
            raise build_failure(log_path, exc) from None
        say(f"lambda-kit: image built in {time.monotonic() - step:.1f}s")

    with docker.ContainerSession(run, tag, labels) as container:
        container.copy_out(f"{contract.OUT}/.", outputs)
    say(f"lambda-kit: build output copied out of container {container.name}, container removed")
    docker.prune_superseded_images(run, checkout_id(project_dir))
