"""Hostile zips, made here byte by byte: lying sizes, bombs on data, native and handler files,
repetitive and deeply nested handlers, control characters in names, CRC damage, 100k entries.
Each is judged by `lambda-kit check` in its own process: one report, a non-zero exit where it is
bad, no traceback, and a peak memory (the process's ru_maxrss) under 300 MB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, raw_zip, text_entry, zeros_deflated
from lambda_kit.audit import audit

MEMORY_LIMIT_MB = 300
GIB = 1 << 30
HANDLER = b"def handler(event, context):\n    return 1\n"


def peak_of(argv: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """Run `argv` from a fresh process that reports the child's result and peak memory (ru_maxrss, MB)."""
    probe = (
        "import resource, subprocess, sys, json\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([done.returncode, done.stdout, done.stderr, peak]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    env.pop("LAMBDA_KIT_DEBUG", None)
    raw = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env, timeout=300, check=True
    )
    code, stdout, stderr, peak = json.loads(raw.stdout)
    return subprocess.CompletedProcess(argv, code, stdout, stderr), peak


def check(path: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """`lambda-kit check` in a fresh process: no traceback, peak memory under the limit."""
    result, peak = peak_of([sys.executable, "-m", "lambda_kit", "check", str(path), "--runtime", "3.12", *args])
    assert "Traceback" not in result.stdout + result.stderr
    assert peak < MEMORY_LIMIT_MB, f"{path.name}: peak {peak:.0f} MB"
    print(f"{path.name}: peak {peak:.0f} MB")  # shown with -s: the figures the closing note quotes
    return result, peak


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    four_gib = zeros_deflated(4 * GIB)  # 4 MB that inflate to 4 GiB
    repetitive = b"a;" * (5 << 20)  # 10 MB of code
    z = {
        "lie-data": raw_zip(
            d / "lie-data.zip", [text_entry("app.py", HANDLER), {"name": "data.bin", "data": four_gib, "size": 100}]
        ),
        "bomb-data": raw_zip(
            d / "bomb-data.zip",
            [text_entry("app.py", HANDLER), {"name": "data.bin", "data": four_gib, "size": 0xFFFFFFFF}],
        ),
        "bomb-so": raw_zip(
            d / "bomb-so.zip",
            [text_entry("app.py", HANDLER), {"name": "lib/_x.abi3.so", "data": four_gib, "size": 4096}],
        ),
        "big-so": raw_zip(
            d / "big-so.zip",
            [
                text_entry("app.py", HANDLER),
                {"name": "lib/_x.abi3.so", "data": zeros_deflated(200 << 20), "size": 200 << 20, "crc": 0},
            ],
        ),
        "bomb-handler": raw_zip(d / "bomb-handler.zip", [{"name": "app.py", "data": four_gib, "size": 100}]),
        "big-handler": raw_zip(d / "big-handler.zip", [text_entry("app.py", repetitive + HANDLER)]),
        "repetitive-handler": raw_zip(
            d / "repetitive-handler.zip", [text_entry("app.py", b"a;" * (60 << 10) + b"\n" + HANDLER)]
        ),
        "deep-handler": raw_zip(
            d / "deep-handler.zip", [text_entry("app.py", b"x = " + b"+".join([b"1"] * 50_000) + b"\n" + HANDLER)]
        ),
        "nested-handler": raw_zip(
            d / "nested-handler.zip", [text_entry("app.py", b"x = " + b"(" * 1000 + b")" * 1000 + b"\n")]
        ),
        "control-names": raw_zip(
            d / "control-names.zip", [text_entry("app.py", HANDLER), text_entry("evil\x1b[31m\n.pyo", b"x", mode=0o600)]
        ),
        "bad-method": raw_zip(
            d / "bad-method.zip", [text_entry("app.py", HANDLER), {"name": "x.so", "data": b"abc", "method": 99}]
        ),
    }
    crc = text_entry("app.py", HANDLER)
    crc["crc"] ^= 0xFF
    z["crc-damage"] = raw_zip(d / "crc-damage.zip", [crc])
    cut = text_entry("app.py", HANDLER)
    cut["data"] = cut["data"][:-8] + b"\xff" * 8  # 8 flipped bytes in the deflate stream
    z["flipped-bytes"] = raw_zip(d / "flipped-bytes.zip", [cut])
    many = d / "entries-100k.zip"
    with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as zf:  # zip64: more than 65,535 entries
        zf.writestr("app.py", HANDLER)
        for i in range(100_000):
            zf.writestr(f"pkg/m{i}.py", b"x = 1\n")
    z["entries-100k"] = many
    return z


def findings(result) -> dict[str, str]:
    """rule id -> its line, from the report."""
    lines = [line.split(None, 2) for line in result.stdout.splitlines() if line.startswith(("error ", "warning "))]
    return {parts[1]: parts[2] for parts in lines}


def test_a_lie_about_a_data_file_is_an_error_naming_it(corpus):
    result, _ = check(corpus["lie-data"])
    assert result.returncode == 1
    assert "data.bin (inflates to more than the 100 bytes its header declares)" in findings(result)["zip-corrupt"]


def test_a_bomb_is_counted_by_what_it_inflates_to_and_stops_at_the_limit(corpus):
    result, _ = check(corpus["bomb-data"])
    assert result.returncode == 1
    assert "over 262,144,000 bytes in the function" in findings(result)["size-unzipped"]
    assert "zip-corrupt" not in findings(result)


def test_bombs_on_native_and_handler_files(corpus):
    so, _ = check(corpus["bomb-so"])
    assert so.returncode == 1 and "lib/_x.abi3.so (inflates to more than the 4,096" in findings(so)["zip-corrupt"]
    handler, _ = check(corpus["bomb-handler"], "--handler", "app.handler")
    assert handler.returncode == 1 and "app.py (inflates to more than the 100" in findings(handler)["zip-corrupt"]
    # A real 200 MB native file (zeros, so not ELF) is read from a temporary file, not memory.
    big, _ = check(corpus["big-so"])
    assert big.returncode == 1 and set(findings(big)) == {"zip-corrupt"}  # its CRC is wrong; not ELF is never reached


def test_handlers_too_big_or_deep_to_parse_are_warnings(corpus):
    big, _ = check(corpus["big-handler"], "--handler", "app.handler")
    assert big.returncode == 0 and "app.py (10,485,802 bytes)" in findings(big)["handler-unparsed"]
    deep, _ = check(corpus["deep-handler"], "--handler", "app.handler")
    assert deep.returncode == 0 and "RecursionError" in findings(deep)["handler-unparsed"]
    nested, _ = check(corpus["nested-handler"], "--handler", "app.handler")
    assert (
        nested.returncode == 1
        and "does not parse (too many nested parentheses)" in findings(nested)["handler-function"]
    )
    repetitive, peak = check(corpus["repetitive-handler"], "--handler", "app.handler")
    assert repetitive.returncode == 0 and not findings(repetitive)  # parsed, and it defines the handler


def test_control_characters_in_names_are_printed_escaped(corpus):
    result, _ = check(corpus["control-names"])
    assert result.returncode == 1
    assert "\x1b" not in result.stdout and "evil\\x1b[31m\\n.pyo" in findings(result)["perm-file"]
    assert "evil\\x1b[31m\\n.pyo" in findings(result)["leftover-bytecode"]
    as_json, _ = check(corpus["control-names"], "--json")
    assert "\x1b" not in as_json.stdout and any(
        "\x1b" in e for f in json.loads(as_json.stdout)["findings"] for e in f["entries"]
    )


def test_crc_damage_and_flipped_bytes_are_errors_naming_the_entry(corpus):
    for case in ("crc-damage", "flipped-bytes"):
        result, _ = check(corpus[case], "--handler", "app.handler")
        assert result.returncode == 1, case
        assert findings(result)["zip-corrupt"].split(": ", 1)[1].startswith("app.py ("), case
    bad, _ = check(corpus["bad-method"])
    assert bad.returncode == 1 and "x.so (cannot be read" in findings(bad)["zip-corrupt"]


def test_a_hundred_thousand_entries_are_judged_in_bounded_memory(corpus):
    result, _ = check(corpus["entries-100k"], "--handler", "app.handler")
    assert result.returncode == 1 and set(findings(result)) == {"perm-file"}  # zipfile's default 0600
    assert "100001 files" in result.stdout and "(+99991 more)" in result.stdout


def test_over_the_entry_bound_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.setattr("lambda_kit.zips.zipreader.MAX_ENTRIES", 3)
    path = raw_zip(tmp_path / "many.zip", [text_entry(f"m{i}.py", b"x") for i in range(4)])
    with pytest.raises(audit.AuditError, match="over the kit's bounds"):
        audit.audit_zip(path)


def test_not_a_zip_and_garbage_are_one_error_line(tmp_path):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x05\x06" + b"\xff" * 40)
    result, _ = check(garbage)
    assert result.returncode == 1 and result.stderr.startswith("lambda-kit: error: not a zip file")
    assert len(result.stderr.splitlines()) == 2  # the error and its hint


def test_the_peak_memory_measure_can_fail():
    """A process that touches 400 MB is measured over the limit: the bound above is real."""
    hog = "b = bytearray(400 << 20); b[::4096] = b'x' * len(b[::4096])"
    result, peak = peak_of([sys.executable, "-c", hog])
    assert result.returncode == 0 and peak > MEMORY_LIMIT_MB
