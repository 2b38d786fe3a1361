"""What a build was asked for (`PackageSettings`, from the command line and the environment) and what
it resolves to (`BuildPlan`): both immutable. `resolve` checks everything that can be wrong before any
build (no docker yet, so a mistake fails in milliseconds) and derives, once, what every step reads:
the runtime, the lock, the checkout's id and image tag, the files in the kit's state folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from lambda_kit.builders import docker
from lambda_kit.code import sources
from lambda_kit.common import runtimes
from lambda_kit.common.errors import UsageError
from lambda_kit.dependencies import cachesign
from lambda_kit.lock import lockfile, lockformats
from lambda_kit.plan import compiling
from lambda_kit.plan.network import NetworkSettings, for_lock
from lambda_kit.steps import wheelfetch
from lambda_kit.zips import zipwriter

BUILDERS = ("auto", "docker", "local")
HANDLER_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\.[A-Za-z_]\w*$")


@dataclass(frozen=True)
class PackageSettings:
    kit_dir: Path
    pipfile: Path
    src: Path
    out: Path
    state_dir: Path
    runtime: str = runtimes.DEFAULT_RUNTIME
    arch: str = runtimes.DEFAULT_ARCH
    handler: str = "app.handler"
    base_image: str = ""
    network: NetworkSettings = field(default_factory=NetworkSettings)
    source_date_epoch: str | None = None
    builder: str = "auto"  # docker when an engine answers, else local; or "docker" / "local", no fallback
    fresh: bool = False  # ignore the dependency cache (make -B)
    include_deps: bool = True  # False: the code only, for a function whose dependencies are in a layer
    layers: tuple[Path, ...] = ()  # layer zips the audit counts (size, lock)
    slim: bool = False  # SLIM=1: drop what never runs, strip native files
    cache_url: str = ""  # CACHE_URL: a store shared by several agents (s3://bucket/prefix or a folder)
    cache_push: bool = True  # CACHE_PUSH=0: read the shared store, never write it
    cache_keys: cachesign.Keys | None = None  # CACHE_SIGNING_KEY, CACHE_TRUSTED_KEYS: signed entries only
    compile: bool = False  # COMPILE=1: hash-based .pyc for what the function imports (bytecode.py)
    compile_profile: Path | None = None  # modules a `make profile` run recorded, compiled too
    sources: sources.SourceRules | None = None  # what of src goes into the zip (None: the defaults)
    cache_dir: Path | None = None  # the machine's cache (KIT_CACHE; None: state_dir): what is keyed by content only

    @property
    def cache(self) -> Path:
        """Where what any checkout on the machine may reuse lives: dependency zips, the wheelhouse, pip's
        cache, the audit's native facts (their keys are content only); state_dir keeps this checkout's."""
        return self.cache_dir or self.state_dir

    lock: Path | None = None  # LOCK, or the lock found in the project (None: the Pipfile's lock)
    selection: lockformats.Selection = field(default_factory=lockformats.Selection)  # LOCK_GROUPS, LOCK_EXTRAS
    fetch: str = ""  # LAMBDA_KIT_FETCH as given (read once, by the CLI): empty or kit, or pip

    def fetch_mode(self) -> str:
        """Who downloads the lock's files: `kit` or `pip` (a bad LAMBDA_KIT_FETCH is a UsageError)."""
        return wheelfetch.setting({wheelfetch.FETCH_ENV: self.fetch})

    def source_rules(self) -> sources.SourceRules:
        return self.sources or sources.SourceRules(
            self.src, self.pipfile.parent, self.kit_dir, self.state_dir, self.out
        )


@dataclass(frozen=True)
class BuildPlan:
    """The settings resolved: what every step of a build reads, and none changes."""

    settings: PackageSettings
    runtime: runtimes.Runtime
    lock_path: Path
    lock: lockfile.Lock  # the lock model (lockformats) for the target
    warnings: tuple[str, ...]
    profile: tuple[str, ...]  # COMPILE=1's recorded imports ([] without one)
    checkout: str  # checkout_id of the Pipfile's folder
    tag: str  # the build image's tag for this checkout, runtime and architecture
    choice: lockformats.LockChoice | None = None  # which lock, of which format (None: the Pipfile's)

    @property
    def lock_choice(self) -> lockformats.LockChoice:
        return self.choice or lockformats.chosen(self.lock_path)

    @property
    def project_dir(self) -> Path:
        """Where the lock's local path dependencies are relative to."""
        return self.lock_path.parent

    def lock_bytes(self) -> bytes:
        """What the build reads as project/Pipfile.lock: a Pipfile.lock as it is, another format's
        model for the target as JSON (the build image reads only that shape)."""
        if self.lock_choice.format == lockformats.PIPFILE:
            return self.lock_path.read_bytes()
        return (json.dumps(self.lock.data, indent=1, sort_keys=True) + "\n").encode()

    def project_bytes(self) -> bytes:
        """The file the lock was made from (the Pipfile, pyproject.toml), or nothing."""
        project = self.lock_choice.project
        return project.read_bytes() if project is not None and project.is_file() else b""

    @property
    def native_facts(self) -> Path:
        """The audit's cache of facts about native files (shared with the shared cache)."""
        return self.settings.cache / "audit-native.json"

    @property
    def wheelhouse(self) -> Path:
        return self.settings.cache / "wheelhouse"

    def build_network(self, environ: dict[str, str] | None = None) -> NetworkSettings:
        """The network settings a dependency build hands to pip: the user's, plus the values of the
        `${VAR}`s the lock's sources use (asked only when dependencies are needed)."""
        return for_lock(
            self.settings.network, self.lock, self.settings.pipfile, os.environ if environ is None else environ
        )


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


def validate_handler(handler: str) -> None:
    if not HANDLER_PATTERN.match(handler):
        raise UsageError(
            "the handler is not of the form module.function", handler, hint="e.g. app.handler or pkg.api.handler"
        )


def resolve(s: PackageSettings, today: date | None = None, need_handler: bool = True) -> BuildPlan:
    """Everything that can be wrong before docker runs, checked; the plan every step reads."""
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
    validate_handler(s.handler)
    choice = lockformats.chosen(s.lock or s.pipfile.with_name(s.pipfile.name + ".lock"))
    environment = runtimes.target_environment(runtime, s.arch)
    if choice.format == lockformats.PIPFILE and not choice.project.is_file():
        raise UsageError(
            "no Pipfile",
            str(choice.project),
            hint="run make in the folder that holds the Pipfile, or set PIPFILE "
            "(`pipenv lock` writes Pipfile and lock)",
        )
    lock_path = choice.path
    lock = lockformats.read(choice, environment, s.selection)
    lockfile.install_plan(lock, environment)  # unpinned or hashless: before docker
    if need_handler:
        _check_handler_module(s, lock)
    if s.out.is_dir():
        raise UsageError("the output path is a folder", str(s.out), hint="set ZIP to a file name such as build.zip")
    _check_ca_bundle(s.network.ca_bundle)
    zipwriter.zip_date_time(s.source_date_epoch)  # a UsageError when SOURCE_DATE_EPOCH is not a number
    project_dir = lock_path.parent
    return BuildPlan(
        settings=s,
        runtime=runtime,
        lock_path=lock_path,
        lock=lock,
        warnings=tuple(warnings),
        profile=tuple(compiling.profile(s)),
        checkout=checkout_id(project_dir),
        tag=image_tag(project_dir, runtime, s.arch),
        choice=choice,
    )


def _check_handler_module(s: PackageSettings, lock: lockfile.Lock) -> None:
    if not s.src.is_dir():
        raise UsageError(
            "the source folder does not exist", str(s.src), hint="set SRC to the folder that holds your handler"
        )
    has_local_paths = bool(lock.local_paths())
    if not has_local_paths and not any((s.src / p).is_file() for p in handler_module_paths(s.handler)):
        raise UsageError(
            "the handler's module is not in the source folder",
            f"{s.handler}: no {' or '.join(handler_module_paths(s.handler))} in {s.src}",
            hint="set HANDLER to module.function relative to the source folder",
        )


def _check_ca_bundle(ca: Path | None) -> None:
    if ca is None:
        return
    try:
        pem = ca.read_bytes()
    except OSError as exc:
        raise UsageError(
            "cannot read the CA bundle", f"{ca}: {exc.strerror}", hint="set CA_BUNDLE to a PEM file"
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise UsageError("the CA bundle has no PEM certificate", str(ca), hint="set CA_BUNDLE to a PEM file")
