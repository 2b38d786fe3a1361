"""The audit's dependency-closure rule, secrets by ownership and the JUnit report, on zips of real
wheels from PyPI (installed as their files, read back by the audit)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import ROOT, download_wheels, kit_env, wheel_members, write_zip
from lambda_kit import cli
from lambda_kit.audit import audit
from lambda_kit.lock.lockfile import Lock

# key -> (requirement, pip platform, python version)
WANTED = {
    "gevent": ("gevent==25.9.1", "manylinux2014_x86_64", "312"),
    "pandas": ("pandas==1.3.4", "manylinux2014_x86_64", "310"),
    "pytz": ("pytz==2024.1", "any", "310"),
    "dateutil": ("python-dateutil==2.9.0.post0", "any", "310"),
    "six": ("six==1.17.0", "any", "310"),
    "requests": ("requests==2.32.3", "any", "312"),
    "idna-old": ("idna==2.4", "any", "312"),
    "idna": ("idna==3.10", "any", "312"),
    "certifi": ("certifi==2024.8.30", "any", "312"),
    "charset": ("charset-normalizer==3.4.0", "any", "312"),
    "urllib3": ("urllib3==2.2.3", "any", "312"),
    "pysocks": ("PySocks==1.7.1", "any", "312"),
    "boto3": ("boto3==1.35.0", "any", "312"),
}
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def whl(tmp_path_factory) -> dict[str, Path]:
    return download_wheels(tmp_path_factory.mktemp("rule-wheels"), WANTED)


def by_id(report: audit.Report) -> dict[str, list[str]]:
    return {f.id: f.entries for f in report.findings}


# ---- the dependency closure ----


def lock_of(**entries: dict) -> dict:
    return {"_meta": {"sources": []}, "default": entries, "develop": {}}


def test_a_package_the_lock_skips_by_marker_is_an_error_naming_both(tmp_path, whl):
    # A public repository's lock marked numpy `python_version < '3.10'`: on python3.10 pandas cannot import.
    lock = lock_of(
        pandas={"version": "==1.3.4", "hashes": ["sha256:00"]},
        numpy={"version": "==1.21.6", "hashes": ["sha256:00"], "markers": "python_version < '3.10'"},
        pytz={"version": "==2024.1", "hashes": ["sha256:00"]},
        **{"python-dateutil": {"version": "==2.9.0.post0", "hashes": ["sha256:00"]}},
        six={"version": "==1.17.0", "hashes": ["sha256:00"]},
    )
    path = write_zip(tmp_path / "f.zip", wheel_members(whl["pandas"], whl["pytz"], whl["dateutil"], whl["six"]))
    report = audit.audit_zip(path, runtime="3.10", lock=Lock(lock))
    assert by_id(report) == {
        "deps-missing": [
            "pandas 1.3.4 requires numpy>=1.21.0: not in the zip; "
            "Pipfile.lock skips it for python3.10 by its marker (python_version < '3.10')"
        ]
    }
    assert report.errors == 1
    # Without the lock the rule still holds; with numpy from a layer it is met.
    assert by_id(audit.audit_zip(path, runtime="3.10")) == {
        "deps-missing": ["pandas 1.3.4 requires numpy>=1.21.0: not in the zip"]
    }
    layer = write_zip(
        tmp_path / "layer.zip", {"python/numpy-1.26.4.dist-info/METADATA": b"Name: numpy\nVersion: 1.26.4\n"}
    )
    assert by_id(audit.audit_zip(path, runtime="3.10", layers=[layer])) == {}


def test_a_version_outside_the_specifier_is_an_error(tmp_path, whl):
    files = wheel_members(whl["requests"], whl["idna-old"], whl["certifi"], whl["charset"], whl["urllib3"])
    report = audit.audit_zip(write_zip(tmp_path / "v.zip", files), runtime="3.12")
    assert by_id(report) == {"deps-version": ["requests 2.32.3 requires idna<4,>=2.5: the zip holds idna 2.4"]}


def test_what_only_the_runtime_ships_is_a_warning(tmp_path, whl):
    report = audit.audit_zip(write_zip(tmp_path / "b.zip", wheel_members(whl["boto3"])), runtime="3.12")
    assert report.errors == 0
    assert sorted(by_id(report)["deps-runtime"]) == [
        "boto3 1.35.0 requires botocore<1.36.0,>=1.35.0",
        "boto3 1.35.0 requires jmespath<2.0.0,>=0.7.1",
        "boto3 1.35.0 requires s3transfer<0.11.0,>=0.10.0",
    ]


def test_extras_the_lock_asks_for_are_required(tmp_path, whl):
    base = wheel_members(whl["requests"], whl["idna"], whl["certifi"], whl["charset"], whl["urllib3"])
    path = write_zip(tmp_path / "x.zip", base)
    lock = lock_of(requests={"version": "==2.32.3", "hashes": ["sha256:00"], "extras": ["socks"]})
    assert by_id(audit.audit_zip(path, runtime="3.12")) == {}
    found = by_id(audit.audit_zip(path, runtime="3.12", lock=Lock(lock)))
    assert found["deps-missing"] == [
        "requests 2.32.3 requires PySocks!=1.5.7,>=1.5.6: not in the zip; not in Pipfile.lock"
    ]
    lock["_meta"]["lock-format"] = "uv.lock"  # the model of another lock names its file
    found = by_id(audit.audit_zip(path, runtime="3.12", lock=Lock(lock)))
    assert found["deps-missing"] == ["requests 2.32.3 requires PySocks!=1.5.7,>=1.5.6: not in the zip; not in uv.lock"]
    socks = write_zip(tmp_path / "s.zip", {**base, **wheel_members(whl["pysocks"])})
    assert "deps-missing" not in by_id(audit.audit_zip(socks, runtime="3.12", lock=Lock(lock)))


def test_damaged_or_hostile_metadata_is_a_warning_and_bounded(tmp_path):
    files = {
        "a-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: a\nVersion: 1.0\nRequires-Dist: b (((\n",
        "c-1.0.dist-info/METADATA": b"\xff\xfe\x00garbage\n" * 1000,
        "d-1.0.dist-info/METADATA": b"Name: d\nVersion: 1.0\nRequires-Dist: e; os_name ==\n",
        "big-1.0.dist-info/METADATA": b"Name: big\nVersion: 1.0\nRequires-Dist: six\n\n" + b"x" * (5 << 20),
        "six-1.17.0.dist-info/METADATA": b"Name: six\nVersion: 1.17.0\n",
    }
    report = audit.audit_zip(write_zip(tmp_path / "h.zip", files), runtime="3.12")
    assert report.errors == 0
    assert [e.split(":")[0] for e in by_id(report)["deps-unread"]] == ["a 1.0", "d 1.0"]


# ---- secrets by ownership ----


def test_test_keys_a_distribution_ships_are_warnings_a_users_are_errors(tmp_path, whl):
    files = wheel_members(whl["gevent"])
    shipped = sorted(n for n in files if n.endswith((".pem", ".key")) and b"PRIVATE KEY-----" in files[n])
    assert len(shipped) >= 5
    report = audit.audit_zip(write_zip(tmp_path / "g.zip", files), runtime="3.12")
    found = by_id(report)
    assert "leftover-secret" not in found
    assert sorted(found["secret-in-dist"]) == sorted(f"{n} (gevent 25.9.1)" for n in shipped)
    # A key of the user's put among them (no RECORD lists it), and a listed file whose bytes changed: errors.
    changed = {**files, "gevent/tests/deploy.pem": KEY, shipped[0]: files[shipped[0]] + KEY}
    found = by_id(audit.audit_zip(write_zip(tmp_path / "u.zip", changed), runtime="3.12"))
    assert sorted(found["leftover-secret"]) == sorted(["gevent/tests/deploy.pem", shipped[0]])
    assert len(found["secret-in-dist"]) == len(shipped) - 1


def test_a_record_that_claims_a_users_file_must_match_its_bytes(tmp_path):
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"other").digest()).rstrip(b"=")
    files = {
        ".env": b"DB_PASSWORD=hunter2\n",
        "evil-1.0.dist-info/METADATA": b"Name: evil\nVersion: 1.0\n",
        "evil-1.0.dist-info/RECORD": b".env,sha256=" + digest + b",6\n",
    }
    assert by_id(audit.audit_zip(write_zip(tmp_path / "e.zip", files), runtime="3.12")) == {"leftover-secret": [".env"]}
    own = base64.urlsafe_b64encode(hashlib.sha256(files[".env"]).digest()).rstrip(b"=")
    files["evil-1.0.dist-info/RECORD"] = b".env,sha256=" + own + b",20\n"
    assert by_id(audit.audit_zip(write_zip(tmp_path / "o.zip", files), runtime="3.12")) == {
        "secret-in-dist": [".env (evil 1.0)"]
    }


# ---- the JUnit report ----


def test_junit_report_one_case_per_rule(tmp_path, whl, capsys):
    files = {**wheel_members(whl["pandas"], whl["pytz"], whl["dateutil"], whl["six"], whl["gevent"])}
    files["odd\x01name/.env"] = b"A=1\n"
    path = write_zip(tmp_path / "j.zip", files)
    report_path = tmp_path / "report.xml"
    assert cli.main(["check", str(path), "--runtime", "3.10", "--junit", str(report_path)]) == 1
    suite = ET.parse(report_path).getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == list(audit.RULES)
    failed = [name for name, case in cases.items() if case.find("failure") is not None]
    assert suite.get("tests") == str(len(audit.RULES)) and suite.get("failures") == str(len(failed))
    assert {"deps-missing", "leftover-secret"} <= set(failed)
    assert {c.get("classname") for c in cases.values()} == {"lambda-kit.audit.python3_10-x86_64"}
    failure = cases["deps-missing"].find("failure")
    assert failure.get("type") == "deps-missing"
    assert "pandas 1.3.4 requires numpy>=1.21.0: not in the zip" in failure.text
    assert f"hint: {audit.RULES['deps-missing'][1]}" in failure.text
    assert "odd\\x01name/.env" in cases["leftover-secret"].find("failure").text
    assert cases["secret-in-dist"].find("failure") is None
    assert cases["secret-in-dist"].find("system-out").text.startswith("warning: ")
    assert cases["perm-file"].find("failure") is None and cases["perm-file"].find("system-out") is None
    capsys.readouterr()
    # A zip that cannot be audited: one failed case; a folder that does not exist: one line, exit 1.
    assert cli.main(["check", str(tmp_path / "missing.zip"), "--junit", str(report_path)]) == 1
    (case,) = ET.parse(report_path).getroot().iter("testcase")
    assert case.get("name") == "audit" and "no such zip" in case.find("failure").get("message")
    capsys.readouterr()
    assert cli.main(["check", str(path), "--junit", str(tmp_path / "no" / "r.xml")]) == 1
    assert capsys.readouterr().err.startswith("lambda-kit: error: the JUnit report's folder does not exist")


def test_make_check_junit(tmp_path, whl):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Pipfile").write_text("[packages]\n")
    (project / "Pipfile.lock").write_text(
        '{"_meta": {"hash": {"sha256": "0"}, "sources": []}, "default": {}, "develop": {}}'
    )
    write_zip(
        project / "build.zip",
        {"app.py": b"def handler(event, context):\n    return 1\n", **wheel_members(whl["boto3"])},
    )

    def check() -> subprocess.CompletedProcess:
        argv = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "check", "JUNIT=out/audit.xml"]
        return subprocess.run(argv, cwd=project, env=kit_env(), capture_output=True, text=True, timeout=300)

    done = check()
    assert done.returncode == 2  # make's own status for a failed recipe
    assert done.stderr.startswith("lambda-kit: error: the JUnit report's folder does not exist (out)")
    (project / "out").mkdir()
    done = check()
    assert done.returncode == 0, done.stderr
    cases = {c.get("name"): c for c in ET.parse(project / "out" / "audit.xml").getroot().iter("testcase")}
    assert "boto3 1.35.0 requires botocore" in cases["deps-runtime"].find("system-out").text
    assert not any(c.find("failure") is not None for c in cases.values())
