"""`make smoke`: the final zip unpacked and invoked as Lambda would, through awslambdaric."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import BASE_IMAGE, RUNTIME, kit_env, make

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("no_leftover_containers")]


@pytest.fixture
def built(sample) -> Path:
    result = make(sample, "package")
    assert result.returncode == 0, result.stderr
    return sample


def rewrite(source: Path, dest: Path, drop: str | None = None, mode_for: dict[str, int] | None = None) -> Path:
    """A copy of a zip without the entries under `drop`, or with other modes for some entries."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if drop and info.filename.startswith(drop):
                continue
            if mode_for and info.filename in mode_for:
                info.external_attr = (stat.S_IFREG | mode_for[info.filename]) << 16
            out.writestr(info, src.read(info))
    return dest


def helper_smoke(project: Path, zip_path: Path, handler: str = "app.handler", event: str | None = None):
    argv = [
        sys.executable,
        str(project / "scripts" / "lambda-kit"),
        "smoke",
        str(zip_path),
        "--handler",
        handler,
        "--runtime",
        RUNTIME,
        "--image",
        BASE_IMAGE,
    ]
    if event:
        argv += ["--event", event]
    return subprocess.run(argv, cwd=project, env=kit_env(), capture_output=True, text=True, timeout=600)


def test_sample_zip_answers_the_sample_event(built):
    result = make(built, "smoke", f"RUNTIME_IMAGE={BASE_IMAGE}", "EVENT=events/order.json")
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    response = json.loads(next(line for line in lines if line.startswith('{"statusCode"')))
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["order_id"] == "A-1001" and body["total"] == "104.40"
    assert len(body["request_id"]) == 36  # the context's aws_request_id, a UUID
    summary = lines[-1]
    assert summary.startswith("lambda-kit: smoke passed: app.handler returned in ")
    assert " ms, peak memory " in summary and " MB (" in summary


def test_bad_event_shape_is_the_handlers_own_answer(built):
    result = make(built, "smoke", f"RUNTIME_IMAGE={BASE_IMAGE}")  # no EVENT: {}
    assert result.returncode == 0, result.stderr
    response = json.loads(next(ln for ln in result.stdout.splitlines() if ln.startswith('{"statusCode"')))
    assert response["statusCode"] == 400


def test_the_audit_runs_first_and_its_errors_stop_the_run(built, tmp_path):
    bad = rewrite(built / "build.zip", tmp_path / "private.zip", mode_for={"app.py": 0o600})
    result = helper_smoke(built, bad)
    assert result.returncode == 1 and "smoke image" not in result.stdout  # nothing was built or run
    assert result.stderr.startswith("lambda-kit: error: the zip failed the audit with 1 error(s), first: perm-file")
    assert "nothing was run" in result.stderr


def with_handler(source: Path, dest: Path, code: str, extra: dict[str, tuple[bytes, int]] | None = None) -> Path:
    """A copy of a zip with another app.py, plus extra files (name -> (bytes, mode))."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info, code.encode() if info.filename == "app.py" else src.read(info))
        for name, (data, mode) in (extra or {}).items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, (stat.S_IFREG | mode) << 16
            out.writestr(info, data)
    return dest


def test_a_handler_cannot_forge_the_report_and_setuid_bits_are_dropped(built, tmp_path):
    code = (
        "import json, os, stat\n"
        "def handler(event, context):\n"
        "    print('LAMBDA_KIT_SMOKE_REPORT ' + json.dumps({'ok': True, 'result': 'forged', 'duration_ms': 1}))\n"
        "    mode = os.stat('/var/task/tool').st_mode\n"
        "    return {'setuid': bool(mode & stat.S_ISUID), 'setgid': bool(mode & stat.S_ISGID),\n"
        "            'mode': oct(stat.S_IMODE(mode)),\n"
        "            'report_fd_in_env': 'LAMBDA_KIT_REPORT_FD' in os.environ}\n"
    )
    zip_path = with_handler(built / "build.zip", tmp_path / "forge.zip", code, {"tool": (b"#!/bin/sh\n", 0o6755)})
    result = helper_smoke(built, zip_path)
    assert result.returncode == 0, result.stderr + result.stdout
    answer = json.loads(next(ln for ln in result.stdout.splitlines() if ln.startswith('{"setuid"')))
    assert answer == {"setuid": False, "setgid": False, "mode": "0o755", "report_fd_in_env": False}
    raising = with_handler(
        built / "build.zip",
        tmp_path / "forge2.zip",
        code.replace("return {", "raise ValueError('real'); x = {"),
        {"tool": (b"#!/bin/sh\n", 0o6755)},
    )
    failed = helper_smoke(built, raising)
    assert failed.returncode == 1 and failed.stderr.startswith(
        "lambda-kit: error: the handler failed (ValueError: real)"
    )


def test_a_malformed_result_is_a_clear_failure(built, tmp_path):
    code = (
        "import os\n"
        "def handler(event, context):\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            if int(fd) > 2 and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):\n"
        "                os.write(int(fd), b'{not json\\n')\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n"
    )
    result = helper_smoke(built, with_handler(built / "build.zip", tmp_path / "garbage.zip", code))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("lambda-kit: error: the handler failed (Runtime.MalformedReport: ")


def test_a_bomb_is_stopped_by_the_audit_before_anything_runs(built, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(built / "build.zip") as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        out.writestr("data.bin", b"\0" * (300 << 20))  # 300 MB of zeros: about 300 KB zipped
    result = helper_smoke(built, bomb)
    assert result.returncode == 1 and "first: size-unzipped" in result.stderr


def test_missing_dependency_fails_as_import_module_error(built, tmp_path):
    bad = rewrite(built / "build.zip", tmp_path / "no-yaml.zip", drop="yaml/")
    result = helper_smoke(built, bad)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "lambda-kit: error: the handler failed (Runtime.ImportModuleError: "
        "Unable to import module 'app': No module named 'yaml')"
    )


def test_wrong_handler_name_is_stopped_by_the_audit(built):
    result = helper_smoke(built, built / "build.zip", handler="app.lambda_handler")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "lambda-kit: error: the zip failed the audit with 1 error(s), first: handler-function "
        "(app.py defines no top-level 'lambda_handler': app.py)"
    )


def test_missing_zip_and_bad_event_are_usage_errors(built, tmp_path):
    missing = helper_smoke(built, tmp_path / "nope.zip")
    assert missing.returncode == 2 and missing.stderr.startswith("lambda-kit: error: no zip to run")
    (tmp_path / "bad.json").write_text("{not json")
    bad_event = helper_smoke(built, built / "build.zip", event=str(tmp_path / "bad.json"))
    assert bad_event.returncode == 2 and bad_event.stderr.startswith("lambda-kit: error: the event file is not JSON")


def test_slim_zip_is_smaller_keeps_records_true_and_still_runs(built):
    default = (built / "build.zip").read_bytes()
    result = make(built, "package", "SLIM=1")
    assert result.returncode == 0, result.stderr
    slim_zip = built / "build.zip"
    assert len(slim_zip.read_bytes()) < len(default)
    with zipfile.ZipFile(slim_zip) as zf:
        names = set(zf.namelist())
        records = [n for n in names if n.endswith(".dist-info/RECORD")]
        listed = {line.split(",")[0] for r in records for line in zf.read(r).decode().splitlines() if line}
    assert not any(n.endswith((".pyi", ".pyx", ".h", ".c")) for n in names)
    assert not any("/tests/" in n for n in names if not n.split("/")[0].endswith(".dist-info"))
    assert len(records) == 11 and listed <= names, sorted(listed - names)[:5]
    smoke = make(built, "smoke", "SLIM=1", f"RUNTIME_IMAGE={BASE_IMAGE}", "EVENT=events/order.json")
    assert smoke.returncode == 0, smoke.stderr + smoke.stdout
    assert smoke.stdout.splitlines()[-1].startswith("lambda-kit: smoke passed")
