"""The smoke runner's report, as the image's run and the host's run both leave it."""

from __future__ import annotations

import json
from pathlib import Path

from lambda_kit.common.errors import KitError
from lambda_kit.invoke import smoke_runner


def read_report(path: Path) -> dict:
    """The runner's report, checked field by field: anything else is a clear failure."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        wrong = smoke_runner.problem(report)
        if wrong is None and not (
            isinstance(report.get("entries"), int) and isinstance(report.get("peak_memory_mb"), (int, float))
        ):
            wrong = "no entries or peak memory"
    except (OSError, ValueError) as exc:
        wrong = str(exc)[:200]
    if wrong:
        raise KitError("the smoke run's report is malformed", wrong, hint="report this as a kit bug")
    return report
