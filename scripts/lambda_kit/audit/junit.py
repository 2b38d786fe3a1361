"""The audit's findings as a JUnit XML report (`check --junit FILE`, `make check JUNIT=FILE`), so
Jenkins' test report and other CI dashboards show them.

One test case per rule of the audit: an error finding fails its case (the message, every entry and
the hint); a warning passes, its entries in the case's system-out; a rule with no finding passes.
A zip that cannot be audited at all is one failed case, `audit`. Names from the zip are escaped
(no control characters reach the XML). Written to a temporary file and renamed into place.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from lambda_kit.audit.auditcore import ERROR, Finding
from lambda_kit.common.errors import KitError
from lambda_kit.zips.zipreader import escape


def names(zip_name: str, runtime: str, arch: str) -> tuple[str, str]:
    """The suite's name, and the cases' class name (dashboards split it at its dots, so the
    runtime's dot becomes '_': lambda-kit.audit.python3_12-x86_64)."""
    return f"lambda-kit audit of {zip_name} ({runtime} {arch})", "lambda-kit.audit." + f"{runtime}-{arch}".replace(
        ".", "_"
    )


def write(path: Path, suite: tuple[str, str], rules: dict, findings: list[Finding], seconds: float = 0.0) -> None:
    """`suite`: names() of the audited zip and target."""
    by_rule = {f.id: f for f in findings}
    root = ET.Element("testsuites")
    failures = sum(f.severity == ERROR for f in findings)
    element = ET.SubElement(
        root,
        "testsuite",
        name=suite[0],
        tests=str(len(rules)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{seconds:.3f}",
    )
    for rule in rules:
        case = ET.SubElement(element, "testcase", classname=suite[1], name=rule, time="0")
        finding = by_rule.get(rule)
        if finding is None:
            continue
        body = "\n".join([*(escape(e) for e in finding.entries), f"hint: {finding.hint}"])
        if finding.severity == ERROR:
            failure = ET.SubElement(case, "failure", message=escape(finding.message), type=rule)
            failure.text = body
        else:
            ET.SubElement(case, "system-out").text = f"warning: {escape(finding.message)}\n{body}"
    _save(path, root)


def write_failure(path: Path, suite: tuple[str, str], exc: KitError) -> None:
    """The report of a zip that could not be audited: one failed case naming why."""
    root = ET.Element("testsuites")
    element = ET.SubElement(root, "testsuite", name=suite[0], tests="1", failures="1", errors="0", skipped="0")
    case = ET.SubElement(element, "testcase", classname=suite[1], name="audit", time="0")
    failure = ET.SubElement(case, "failure", message=escape(str(exc)), type="audit")
    failure.text = f"hint: {exc.hint}" if exc.hint else ""
    _save(path, root)


def _save(path: Path, root: ET.Element) -> None:
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise KitError(
            "the JUnit report's folder does not exist", str(folder), hint="create it, or give another JUNIT path"
        )
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
