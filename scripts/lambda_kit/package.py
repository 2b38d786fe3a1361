"""The flow of `package` and `layer`, top to bottom; each step lives in its stage's folder.

    plan          settings resolved and checked, no docker yet (plan/)
    code          what of SRC ships, secrets refused (code/)
    dependencies  deps.zip from the machine's cache, the fleet's, or a builder (dependencies/, builders/)
    assemble      deps.zip plus the code, one zip writer on the host (steps/assemble.py)
    audit         what Lambda would reject stops here (audit/)
    commit        the zip replaces the old one atomically, and is recorded as the kit's (outputs.py)

A failure at any step leaves the previous zip as it was.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lambda_kit.audit.auditstep import audit_function_zip, audit_layer_zip
from lambda_kit.builders.runner import Run
from lambda_kit.code import secretscan, sources
from lambda_kit.common import diskspace, reporter
from lambda_kit.common.digests import sha256_file
from lambda_kit.dependencies import sourcing
from lambda_kit.lock import lockcheck
from lambda_kit.outputs import OutputRecords, out_folder
from lambda_kit.plan import compiling
from lambda_kit.plan.buildplan import BuildPlan, PackageSettings, resolve
from lambda_kit.steps import assemble

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
            reporter.line(f"wrote {self.path} ({self.size:,} bytes, {self.files} files) in {self.seconds:.1f}s"),
            f"  sha256      {self.sha256}",
            f"  CodeSha256  {self.code_sha256}",
        ]


def package(s: PackageSettings, run: Run, say: Callable[[str], None]) -> PackageResult:
    """The function's zip: its code and, unless INCLUDE_DEPS=0, the locked dependencies."""
    started = time.monotonic()
    plan = resolve(s)
    for warning in plan.warnings:
        say(reporter.warning(warning))
    records = OutputRecords(s.state_dir)
    # BUILDER=local needs the lock's check only once its own build is done: pipenv starts now, on
    # another core (stopped at once when the dependencies turn out to be cached).
    early = lockcheck.start(plan.lock_choice) if s.include_deps and s.builder == "local" else None
    try:
        with diskspace.guard(
            "building the zip",
            [s.state_dir, s.cache, Path(tempfile.gettempdir()), s.out.parent],
            lambda: sourcing.disk_needed(plan),
        ):
            records.check_replaceable(s.out)
            out_folder(s.out)
            with staging_folder("package-") as staging:
                code = staging / "code"
                selection = sources.stage_code(s.source_rules(), code)  # what of SRC ships, before any build
                secretscan.refuse_secrets([(name, code / name) for name, _, _ in selection.files])
                packed = dependencies(plan, run, say, early)
                fresh = staging / s.out.name
                digest = assemble.build_zip(
                    packed,
                    code,
                    staging,
                    fresh,
                    s.source_date_epoch,
                    compile_handler=compiling.code_handler(s, say),
                    profile=list(plan.profile),
                )
                report = audit_function_zip(fresh, plan, say)
                records.commit(fresh, s.out, digest)
    finally:
        if early is not None:
            early.stop()
    return PackageResult.of(s.out, report.files, digest, started)


def build_layer(s: PackageSettings, run: Run, say: Callable[[str], None]) -> PackageResult:
    """A Lambda layer zip: the same dependencies, under python/, copied compressed from deps.zip."""
    started = time.monotonic()
    records = OutputRecords(s.state_dir)
    records.check_replaceable(s.out, setting="DIST")
    plan = resolve(s, need_handler=False)
    packed = sourcing.dependencies(plan, run, say)
    out_folder(s.out)
    with staging_folder("layer-") as staging:
        fresh = staging / s.out.name
        assemble.build_layer_zip(packed, fresh, s.source_date_epoch)
        report = audit_layer_zip(fresh, plan, say)
        digest = sha256_file(fresh)
        records.commit(fresh, s.out, digest)
    return PackageResult.of(s.out, report.files, digest, started)


def prepare_dependencies(s: PackageSettings, run: Run, say: Callable[[str], None]) -> Path:
    """Make sure the cache holds deps.zip for the current lock and settings (several functions
    then share that one build)."""
    return sourcing.dependencies(resolve(s, need_handler=False), run, say)


def dependencies(plan: BuildPlan, run: Run, say, early) -> Path | None:
    if not plan.settings.include_deps:
        say(reporter.line("the code only (its dependencies come from a layer), no build needed"))
        return None
    return sourcing.dependencies(plan, run, say, early)


@contextmanager
def staging_folder(prefix: str) -> Iterator[Path]:
    """A folder for the zip being made, in the run's temporary folder (tempdirs), always removed."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
