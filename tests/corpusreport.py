"""The corpus sweep's outputs: the records as JSON, and a Markdown summary (bench/corpus.md) with
the counts per target and every package with an audit error, its rule and its entries."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

MAX_ENTRIES = 6  # entries shown per rule and package in the summary (the JSON has all)
PROBLEMS = ("timeout", "crashed", "build-failed")  # the sweep could not audit the package: a failure too


OVER_LIMIT = "size-unzipped"  # the zip cannot be a Lambda zip at all: the audit is right, not a false alarm


def other_errors(record: dict) -> dict[str, list[str]]:
    """The record's errors but size-unzipped."""
    return {rule: entries for rule, entries in record.get("errors", {}).items() if rule != OVER_LIMIT}


def over_limit(record: dict) -> bool:
    """Over Lambda's unzipped limit: the wheels alone (too-large, not downloaded) or the zip (size-unzipped)."""
    return record["status"] == "too-large" or OVER_LIMIT in record.get("errors", {})


def failing(records: list[dict]) -> list[dict]:
    """Records with an audit error (but size-unzipped alone), or that the sweep could not audit, or
    whose audit disagrees with the real loader."""
    return [
        r for r in records if other_errors(r) or r["status"] in PROBLEMS or not r.get("loader", {}).get("equal", True)
    ]


def counts(result: dict) -> dict[str, dict]:
    """Per target: packages listed and selected, statuses, errors and warnings by rule (packages
    with each), loader comparisons and mismatches."""
    out = {}
    listed = result["run"]["ranking"]
    for key, picked in result["selection"].items():
        records = [r for r in result["records"] if r["target"] == key]
        statuses = Counter(r["status"] for r in records)
        errors = Counter(rule for r in records for rule in r.get("errors", {}))
        warnings = Counter(rule for r in records for rule in r.get("warnings", {}))
        compared = [r for r in records if "loader" in r]
        out[key] = {
            "listed": listed,
            "looked-at": picked.get("looked-at", 0),
            "native": picked["native-total"],
            "selected": len(picked["native"]),
            "pure": picked["pure"],
            "no-file": picked["no-file"],
            "no-page": len(picked["no-page"]),
            "swept": len(records),
            "resolvable": len(records) - statuses["unresolvable"],
            "audited": statuses["audited"],
            "clean": sum(1 for r in records if r["status"] == "audited" and not r.get("errors")),
            "over-limit": sum(1 for r in records if over_limit(r)),
            "with-errors": sum(1 for r in records if other_errors(r)),
            "statuses": dict(statuses),
            "errors": dict(errors),
            "warnings": dict(warnings),
            "loader-compared": len(compared),
            "loader-mismatches": sum(1 for r in compared if not r["loader"]["equal"]),
        }
    return out


def counts_line(result: dict) -> str:
    parts = []
    for key, c in counts(result).items():
        errors = ", ".join(f"{rule} {n}" for rule, n in sorted(c["errors"].items())) or "none"
        parts.append(
            f"{key}: {c['swept']} swept, {c['resolvable']} resolvable, {c['clean']} clean, "
            f"{c['over-limit']} over Lambda's size limit, {c['with-errors']} with other errors "
            f"(packages per rule: {errors}), {c['loader-mismatches']} loader mismatches"
        )
    return "corpus: " + "; ".join(parts)


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 is not a file for the repository
    os.replace(tmp, path)


def write(result: dict, json_path: Path | None, md_path: Path | None) -> None:
    if json_path is not None:
        _atomic(json_path, json.dumps(result, indent=1, sort_keys=True) + "\n")
    if md_path is not None:
        _atomic(md_path, markdown(result))


def _by_rule(table: dict[str, int]) -> str:
    return "<br>".join(f"{rule}: {n}" for rule, n in sorted(table.items())) or "-"


def _entries(entries: list[str]) -> str:
    shown = "; ".join(f"`{e}`" for e in entries[:MAX_ENTRIES])
    return shown + (f" (+{len(entries) - MAX_ENTRIES} more)" if len(entries) > MAX_ENTRIES else "")


def markdown(result: dict) -> str:
    run = result["run"]
    table = counts(result)
    lines = [
        "# Corpus sweep: the audit on the most downloaded native packages",
        "",
        f"{run['date']}, kit {run['commit']}, {run['ranking']}, {run['jobs']} at once on {run['cpus']} CPUs, "
        f"{run['seconds']} s in all; real loader compared: {'yes' if run['loader'] else 'no'}. "
        "Written by `make corpus` (tests/corpus.py); the records are in corpus.json beside this file.",
        "",
        "A package is swept for a target when the file pip would install for it there is a native (manylinux) "
        "wheel. Its zip is what the kit builds of it and its dependencies; the audit is `check`'s. "
        "Not resolvable: pip finds no set of wheels for the target (not an audit error). Over the limit: "
        "the wheels alone (not downloaded) or the zip (`size-unzipped`) exceed Lambda's 262,144,000 bytes "
        "unzipped, so no zip of the package can deploy: the audit is right there. With other errors: an error "
        "from any other rule, each listed below with its entries.",
        "",
        "| target | looked at | native | pure wheel | no file | selected | resolvable | audited | clean "
        "| over the limit | with other errors | errors by rule (packages) | warnings by rule (packages) "
        "| loader: compared / mismatches |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, c in table.items():
        others = ", ".join(f"{s} {n}" for s, n in sorted(c["statuses"].items()) if s not in ("audited", "unresolvable"))
        lines.append(
            f"| {key} | {c['looked-at']} | {c['native']} | {c['pure']} | {c['no-file']} | {c['selected']} "
            f"| {c['resolvable']} | {c['audited']}{f' ({others})' if others else ''} | {c['clean']} "
            f"| {c['over-limit']} | {c['with-errors']} | {_by_rule(c['errors'])} | {_by_rule(c['warnings'])} "
            f"| {c['loader-compared']} / {c['loader-mismatches']} |"
        )
    records = result["records"]
    lines += ["", "## Packages with an audit error (but size-unzipped alone)", ""]
    erring = [r for r in records if other_errors(r)]
    lines += [
        f"- {r['target']} **{r['package']} {r['version']}**: "
        + "; ".join(f"{rule}: {_entries(entries)}" for rule, entries in sorted(r["errors"].items()))
        for r in erring
    ] or ["None."]
    over = [r for r in records if r["status"] == "audited" and over_limit(r) and not other_errors(r)]
    if over:
        lines += ["", f"## Zips over Lambda's unzipped limit, no other error ({len(over)})", ""]
        lines += [f"- {r['target']} {r['package']} {r['version']}: {r.get('unzipped_bytes', 0):,}+ bytes" for r in over]
    lines += ["", "## Warnings", ""]
    warned = [r for r in records if r.get("warnings")]
    lines += [
        f"- {r['target']} {r['package']} {r['version']}: "
        + "; ".join(f"{rule}: {_entries(entries)}" for rule, entries in sorted(r["warnings"].items()))
        for r in warned
    ] or ["None."]
    lines += ["", "## Real loader and audit disagree", ""]
    lines += [
        f"- {r['target']} {r['package']} {r['version']}: " + "; ".join(r["loader"]["mismatches"][:MAX_ENTRIES])
        for r in records
        if "loader" in r and not r["loader"]["equal"]
    ] or ["None." if any("loader" in r for r in records) else "Not compared in this run."]
    for status, title in (
        ("unresolvable", "Not resolvable for the target"),
        ("too-large", "Too large for a Lambda zip (the wheels alone)"),
        ("build-failed", "The kit could not build the zip"),
        ("timeout", "Timed out"),
        ("crashed", "The sweep's child failed"),
    ):
        chosen = [r for r in records if r["status"] == status]
        if chosen:
            lines += ["", f"## {title} ({len(chosen)})", ""]
            lines += [f"- {r['target']} {r['package']} {r['version']}: {r.get('reason', '')}" for r in chosen]
    return "\n".join(lines) + "\n"
