"""The audit step of a build: the zip this process just wrote, audited before it replaces the old
one (an error keeps the previous zip), and the audit's modules loaded early while a local build
waits on the network."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from lambda_kit.common import reporter
from lambda_kit.common.errors import KitError

if TYPE_CHECKING:
    from pathlib import Path

    from lambda_kit.audit import audit
    from lambda_kit.plan.buildplan import BuildPlan


def audit_as_built(path: Path, plan: BuildPlan, say: Callable[[str], None], **checks) -> audit.Report:
    """The audit of a zip this process just wrote from verified parts: the plan's runtime and
    architecture, the shared facts about native files, declared sizes trusted. `checks`: what else
    to audit against (handler, lock, layers)."""
    from lambda_kit.audit import audit  # loaded when needed (a local build loads it while it downloads: warm_up)

    s = plan.settings
    return audit.audit_zip(
        path,
        runtime=s.runtime,
        arch=s.arch,
        native_cache=plan.native_facts,
        inflate_all=False,
        warn=lambda m: say(reporter.warning(m)),
        **checks,
    )


def audit_function_zip(path: Path, plan: BuildPlan, say: Callable[[str], None]) -> audit.Report:
    """The full audit of the zip this process wrote: an error fails the build before the old zip is replaced."""
    from lambda_kit.audit import auditcore

    s = plan.settings
    report = audit_as_built(path, plan, say, handler=s.handler, lock=plan.lock, layers=s.layers)
    for finding in report.findings:
        say(reporter.line(f"audit: {finding.line()}"))
        say(reporter.line(f"audit:         hint: {finding.hint}"))
    if report.errors:
        first = next(f for f in report.findings if f.severity == auditcore.ERROR)
        raise KitError(
            f"the zip failed the audit with {report.errors} error(s), first: {first.id}",
            first.message,
            hint=f"{first.hint}; the previous zip is untouched",
        )
    say(reporter.line(f"audit passed ({report.warnings} warnings)"))
    return report


def audit_layer_zip(path: Path, plan: BuildPlan, say: Callable[[str], None]) -> audit.Report:
    """The audit of a layer zip this process wrote: an error fails the build before the old one is replaced."""
    report = audit_as_built(path, plan, say)
    for finding in report.findings:
        say(reporter.line(f"audit: {finding.line()}"))
    if report.errors:
        raise KitError("the layer failed the audit", report.findings[0].message, hint=report.findings[0].hint)
    return report


def warm_up_audit() -> None:
    """The audit's modules (ELF parsing, its rule tables) loaded in a thread while the local build
    waits on the network, so the audit after it starts at once. Imports are thread-safe: the
    audit's own `import` waits for this one if it has not finished."""
    threading.Thread(
        target=importlib.import_module, args=(f"{__package__}.audit",), name="lambda-kit-warm-up", daemon=True
    ).start()
