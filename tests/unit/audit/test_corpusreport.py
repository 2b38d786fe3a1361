"""The corpus sweep's bookkeeping (tests/corpus*.py), offline: no error is hidden from the summary,
a package pip cannot resolve is not an error, the loader comparison catches either disagreement."""

from __future__ import annotations

import corpusreport
import pytest
from corpuswork import compare_loader, parse_target
from lambda_kit.audit import audit
from lambda_kit.audit.auditcore import Finding

RUN = {"date": "d", "commit": "c", "ranking": "top 5 of t.tsv", "seconds": 1, "cpus": 2, "jobs": 2, "loader": True}
SELECTION = {
    "3.12-x86_64": {"native": [{}] * 4, "native-total": 4, "pure": 1, "no-file": 0, "no-page": [], "looked-at": 5}
}


def record(package: str, status: str = "audited", **extra) -> dict:
    return {
        "package": package,
        "version": "1.0",
        "target": "3.12-x86_64",
        "rank": 1,
        "status": status,
        "seconds": 1.0,
        "errors": {},
        "warnings": {},
        **extra,
    }


def test_every_error_is_in_the_summary_with_its_rule_and_entries():
    records = [
        record("clean"),
        record("secrets", errors={"leftover-secret": ["pkg/tests/key.pem", "pkg/tests/other.key"]}),
        record("natives", errors={"native-needed": ["a/x.so -> libA.so (libB.so)"]}, warnings={"size-zipped": ["z"]}),
        record("nowheel", status="unresolvable", reason="pip: no matching distribution"),
        record("slow", status="timeout", reason="over 600 s"),
    ]
    for r in records[3:]:
        del r["errors"], r["warnings"]
    result = {"run": RUN, "selection": SELECTION, "records": records}
    text = corpusreport.markdown(result)
    assert "**secrets 1.0**: leftover-secret: `pkg/tests/key.pem`; `pkg/tests/other.key`" in text
    assert "**natives 1.0**: native-needed: `a/x.so -> libA.so (libB.so)`" in text
    assert "## Not resolvable for the target (1)" in text and "nowheel 1.0: pip: no matching distribution" in text
    counts = corpusreport.counts(result)["3.12-x86_64"]
    assert counts["errors"] == {"leftover-secret": 1, "native-needed": 1} and counts["with-errors"] == 2
    assert counts["resolvable"] == 4 and counts["clean"] == 1 and counts["warnings"] == {"size-zipped": 1}
    assert [r["package"] for r in corpusreport.failing(records)] == ["secrets", "natives", "slow"]


def test_the_loader_comparison_catches_both_disagreements():
    needed = Finding("native-needed", audit.ERROR, "m", ["a/x.so -> libA.so (libB.so)"])
    report = audit.Report("z.zip", "python3.12", "x86_64", 1, 1, 1, [needed])
    assert compare_loader(report, {"a/x.so": ["libB.so"], "a/y.so": []})["equal"]
    found = compare_loader(report, {"a/x.so": [], "a/y.so": ["libC.so"]})
    assert found["mismatches"] == [
        "a/x.so: the loader loads it, the audit says it fails",
        "a/y.so: the loader does not find libC.so, the audit passes it",
    ]
    assert not compare_loader(report, {})["equal"]  # the audit names a file the loader was not asked about
    optional = Finding("native-optional", audit.WARNING, "m", ["a/z.so (libgomp.so.1)"])  # fails; the package copes
    report = audit.Report("z.zip", "python3.12", "x86_64", 1, 1, 1, [needed, optional])
    assert compare_loader(report, {"a/x.so": ["libB.so"], "a/z.so": ["libgomp.so.1"]})["equal"]
    assert not compare_loader(report, {"a/x.so": ["libB.so"], "a/z.so": []})["equal"]


def test_targets_are_runtime_and_architecture():
    assert parse_target("python3.11-arm64").key == "3.11-arm64"
    assert parse_target("3.12-x86_64").pip_args[:4] == [
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
    ]
    for bad in ("3.12", "3.12-aarch64", "2.7-x86_64"):
        with pytest.raises(ValueError):
            parse_target(bad)


def test_a_zip_over_lambdas_limit_is_not_a_false_alarm_but_its_other_errors_are():
    big = record("big", errors={"size-unzipped": ["over 262,144,000 bytes"]}, unzipped_bytes=262_144_001)
    worse = record("worse", errors={"size-unzipped": ["over"], "zip-corrupt": ["lib.so (declares 291,507,928 bytes)"]})
    wheels = record("wheels", status="too-large", reason="3,000,146,972 bytes of wheels")
    result = {"run": RUN, "selection": SELECTION, "records": [big, worse, wheels]}
    assert corpusreport.failing([big, worse, wheels]) == [worse]
    counts = corpusreport.counts(result)["3.12-x86_64"]
    assert counts["over-limit"] == 3 and counts["with-errors"] == 1
    assert counts["errors"] == {"size-unzipped": 2, "zip-corrupt": 1}  # every rule counted, none hidden
    text = corpusreport.markdown(result)
    assert "**worse 1.0**: size-unzipped: `over`; zip-corrupt: `lib.so (declares 291,507,928 bytes)`" in text
    assert "- 3.12-x86_64 big 1.0: 262,144,001+ bytes" in text
