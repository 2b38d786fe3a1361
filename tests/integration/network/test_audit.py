"""The audit: a corpus of bad zips built from real files, each tripping exactly its rule, and good
zips tripping none. Wheels are real downloads from PyPI for the wrong platform or Python."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
from helpers import download_wheels, wheel_members, write_zip, zip_entry
from lambda_kit import cli
from lambda_kit.audit import audit
from lambda_kit.lock.lockfile import Lock
from lambda_kit.zips import zipreader

HANDLER_SOURCE = b"import six\n\n\ndef handler(event, context):\n    return {'ok': six.PY3}\n"

# (requirement, pip platform, python version) -> a real wheel for that target
WHEELS = {
    "aarch64": ("markupsafe==3.0.4", "manylinux2014_aarch64", "311"),
    "macos": ("markupsafe==3.0.4", "macosx_11_0_arm64", "311"),
    "cp310": ("markupsafe==3.0.4", "manylinux2014_x86_64", "310"),
    "x86_64": ("markupsafe==3.0.4", "manylinux2014_x86_64", "311"),
    "glibc-2.34": ("pydantic-core==2.14.0", "manylinux_2_34_x86_64", "311"),
    "six": ("six==1.17.0", "any", "311"),
    "idna": ("idna==3.10", "any", "311"),
}


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> dict[str, Path]:
    return download_wheels(tmp_path_factory.mktemp("wheels"), WHEELS)


@pytest.fixture
def base_files(wheels) -> dict[str, bytes]:
    """A good function: a handler plus a pure-Python dependency installed as pip would, and the
    metadata of typing-extensions, which pydantic-core (added by some tests) requires."""
    typing_extensions = {"typing_extensions-4.12.2.dist-info/METADATA": b"Name: typing_extensions\nVersion: 4.12.2\n"}
    return {"app.py": HANDLER_SOURCE, **wheel_members(wheels["six"]), **typing_extensions}


def ids(path: Path, **options) -> list[str]:
    options.setdefault("runtime", "3.11")
    return audit.audit_zip(path, **options).ids()


# ---- good zips trip nothing ----


def test_pure_python_zip_is_clean(tmp_path, base_files, wheels):
    path = write_zip(tmp_path / "good.zip", {**base_files, **wheel_members(wheels["idna"])})
    assert ids(path, handler="app.handler") == []


def test_linux_wheel_for_the_target_is_clean(tmp_path, base_files, wheels):
    path = write_zip(tmp_path / "good.zip", {**base_files, **wheel_members(wheels["x86_64"])})
    assert ids(path, handler="app.handler") == []


# ---- each bad zip trips exactly its rule ----


def test_wrong_architecture(tmp_path, base_files, wheels):
    path = write_zip(tmp_path / "bad.zip", {**base_files, **wheel_members(wheels["aarch64"])})
    report = audit.audit_zip(path, runtime="3.11", arch="x86_64")
    assert report.ids() == ["native-arch"]
    assert report.findings[0].entries == ["markupsafe/_speedups.cpython-311-aarch64-linux-gnu.so (arm64)"]
    # The same files are right for arm64, except that their names are for aarch64 Python 3.11 only.
    assert ids(path, arch="arm64") == []


def test_macos_binary(tmp_path, base_files, wheels):
    members = wheel_members(wheels["macos"])
    (mac_name,) = [n for n in members if n.endswith(".so")]
    # Under the Linux file name, so only the file's format is wrong.
    members["markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"] = members.pop(mac_name)
    report = audit.audit_zip(write_zip(tmp_path / "bad.zip", {**base_files, **members}), runtime="3.11")
    assert report.ids() == ["native-not-elf"]
    assert report.findings[0].entries[0].endswith("(Mach-O)")


def test_glibc_newer_than_the_runtime(tmp_path, base_files, wheels):
    path = write_zip(tmp_path / "bad.zip", {**base_files, **wheel_members(wheels["glibc-2.34"])})
    report = audit.audit_zip(path, runtime="3.11")
    assert report.ids() == ["native-glibc"]
    assert report.findings[0].entries == ["pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so (GLIBC_2.34)"]
    assert "2.26" in report.findings[0].message


def test_extension_for_another_python(tmp_path, base_files, wheels):
    path = write_zip(tmp_path / "bad.zip", {**base_files, **wheel_members(wheels["cp310"])})
    assert ids(path) == ["native-abi"]


def test_extension_for_another_python_beside_the_right_one_is_a_warning(tmp_path, base_files, wheels):
    # snowflake-connector-python's cp312 wheel also ships its module's cp311 file: 3.12 imports its own.
    stray = {n: d for n, d in wheel_members(wheels["cp310"]).items() if n.endswith(".so")}
    path = write_zip(tmp_path / "ok.zip", {**base_files, **wheel_members(wheels["x86_64"]), **stray})
    report = audit.audit_zip(path, runtime="3.11")
    assert report.ids() == ["native-abi-unused"] and report.errors == 0
    assert report.findings[0].entries == sorted(stray)


def test_one_file_over_lambdas_limit_is_size_unzipped_not_corrupt(tmp_path, base_files):
    # nvidia-cufft-cu12's libcufft.so.11 alone is 291 MB: the zip cannot deploy, and it is not damaged.
    huge = {"nvidia/lib/libhuge.so.1": bytes(262_144_001)}
    path = write_zip(tmp_path / "big.zip", {**base_files, **huge})
    assert audit.audit_zip(path, runtime="3.11").ids() == ["size-unzipped"]
    assert audit.audit_zip(path, runtime="3.11", inflate_all=False).ids() == ["size-unzipped"]


def test_file_written_with_mode_0600(tmp_path, base_files):
    path = write_zip(tmp_path / "bad.zip", base_files, modes={"app.py": 0o600})
    report = audit.audit_zip(path, runtime="3.11")
    assert report.ids() == ["perm-file"]
    assert report.findings[0].entries == ["app.py (0600)"]


def test_folder_others_cannot_enter(tmp_path, base_files):
    path = write_zip(tmp_path / "bad.zip", base_files, extra_infos=[(zip_entry("lib/", 0o700), b"")])
    assert ids(path) == ["perm-dir"]


@pytest.mark.parametrize(
    "name, rule",
    [("../evil.py", "zip-dotdot"), ("/etc/evil.py", "zip-absolute"), ("lib\\evil.py", "zip-backslash")],
)
def test_zip_slip_names(tmp_path, base_files, name, rule):
    path = write_zip(tmp_path / "bad.zip", {**base_files, name: b"x = 1\n"})
    assert ids(path) == [rule]


def test_symlink_entry(tmp_path, base_files):
    link = zip_entry("current.py")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = write_zip(tmp_path / "bad.zip", base_files, extra_infos=[(link, b"app.py")])
    assert ids(path) == ["zip-symlink"]


def test_duplicate_entry(tmp_path, base_files):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns "Duplicate name"; that is the point
        path = write_zip(
            tmp_path / "bad.zip", base_files, extra_infos=[(zip_entry("app.py"), b"def handler(e, c): pass\n")]
        )
    report = audit.audit_zip(path, runtime="3.11")
    assert report.ids() == ["zip-duplicate"]
    assert report.findings[0].entries == ["app.py"]


def mark_encrypted(path: Path, name: str) -> None:
    """Set the 'encrypted' flag bit of one entry in both its headers (zipfile cannot encrypt)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
        central = zf.start_dir
    data[local + 6] |= 0x1  # local file header: general purpose flag at offset 6
    while data[central : central + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[central + 28 : central + 34])
        if data[central + 46 : central + 46 + name_len] == name.encode():
            data[central + 8] |= 0x1  # central directory header: flag at offset 8
        central += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def test_encrypted_entry(tmp_path, base_files):
    path = write_zip(tmp_path / "bad.zip", {**base_files, "vault.py": b"\x00" * 32})
    mark_encrypted(path, "vault.py")
    assert ids(path) == ["zip-encrypted"]


def test_missing_handler_module_and_missing_function(tmp_path, base_files):
    path = write_zip(tmp_path / "bad.zip", base_files)
    assert ids(path, handler="main.handler") == ["handler-module"]
    assert ids(path, handler="app.lambda_handler") == ["handler-function"]
    assert ids(path, handler="app.handler") == []


def test_handler_inside_a_package(tmp_path, base_files):
    files = {
        **base_files,
        "myapp/__init__.py": b"",
        "myapp/handlers/__init__.py": b"",
        "myapp/handlers/api.py": b"from .impl import handle as handler\n",
    }
    assert ids(write_zip(tmp_path / "ok.zip", files), handler="myapp.handlers.api.handler") == []


def test_oversized_unzipped_payload_counting_layers(tmp_path, base_files):
    big = b"\0" * (140 * 1024 * 1024)
    function = write_zip(tmp_path / "function.zip", {**base_files, "data/model.bin": big})
    layer = write_zip(tmp_path / "layer.zip", {"python/weights.bin": big})
    assert ids(function) == []
    report = audit.audit_zip(function, runtime="3.11", layers=[layer])
    assert report.ids() == ["size-unzipped"]
    assert "layer.zip" in report.findings[0].message


def test_over_50_mb_zipped_is_a_warning(tmp_path, base_files):
    path = write_zip(tmp_path / "big.zip", {**base_files, "data/noise.bin": os.urandom(51 * 1024 * 1024)})
    report = audit.audit_zip(path, runtime="3.11")
    assert report.ids() == ["size-zipped"] and report.errors == 0 and report.warnings == 1


@pytest.mark.parametrize(
    "name, data, rule",
    [
        ("app/__pycache__/app.cpython-311.pyc", b"\x00", "bytecode-python"),  # not this runtime's magic number
        ("app/app.pyo", b"\x00", "leftover-bytecode"),
        ("Pipfile.lock", b"{}", "leftover-pipfile"),
        (".env", b"DB_PASSWORD=hunter2\n", "leftover-secret"),
        ("deploy/id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----\n", "leftover-secret"),
        ("certs/server.pem", b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n", "leftover-secret"),
        ("config/credentials", b"[default]\naws_secret_access_key = abc\n", "leftover-secret"),
    ],
)
def test_leftovers(tmp_path, base_files, name, data, rule):
    assert ids(write_zip(tmp_path / "bad.zip", {**base_files, name: data})) == [rule]


def test_certificates_and_env_examples_are_not_secrets(tmp_path, base_files):
    files = {
        **base_files,
        "certifi/cacert.pem": b"-----BEGIN CERTIFICATE-----\nMII\n",
        ".env.example": b"DB_PASSWORD=\n",
    }
    assert ids(write_zip(tmp_path / "ok.zip", files)) == []


def test_lock_against_zip(tmp_path, base_files):
    lock = {
        "_meta": {"sources": []},
        "default": {
            "six": {"version": "==1.17.0", "hashes": ["sha256:00"]},
            "idna": {"version": "==3.10", "hashes": ["sha256:00"]},
            "tomli": {"version": "==2.0.0", "hashes": ["sha256:00"], "markers": "python_version < '3.11'"},
        },
        "develop": {"iniconfig": {"version": "==2.0.0", "hashes": ["sha256:00"]}},
    }
    path = write_zip(tmp_path / "z.zip", base_files)
    report = audit.audit_zip(path, runtime="3.11", lock=Lock(lock))
    assert report.ids() == ["lock-missing"]
    assert report.findings[0].entries == ["idna==3.10"]  # tomli's marker is false on 3.11
    lock["default"]["idna"]["version"] = "==1.17"
    lock["default"]["six"]["version"] = "==1.16.0"
    lock["default"].pop("idna")
    dev = {**base_files, "iniconfig-2.0.0.dist-info/METADATA": b"Name: iniconfig\n"}
    report = audit.audit_zip(write_zip(tmp_path / "d.zip", dev), runtime="3.11", lock=Lock(lock))
    assert report.ids() == ["lock-version", "lock-dev"]
    assert report.findings[0].entries == ["six 1.17.0 (lock: 1.16.0)"]


# ---- the command line ----


def test_cli_exit_codes_and_json(tmp_path, base_files, capsys):
    good = write_zip(tmp_path / "good.zip", base_files)
    bad = write_zip(tmp_path / "bad.zip", base_files, modes={"app.py": 0o600})
    assert cli.main(["check", str(good), "--runtime", "python3.11", "--handler", "app.handler"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "lambda-kit: audit: 0 errors, 0 warnings"
    assert cli.main(["check", str(bad), "--runtime", "3.11", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 1 and report["runtime"] == "python3.11"
    assert report["findings"][0]["id"] == "perm-file" and report["findings"][0]["entries"] == ["app.py (0600)"]
    assert report["findings"][0]["hint"]
    assert cli.main(["check", str(good), "--runtime", "2.7"]) == 2
    assert cli.main(["check", str(good), "--arch", "sparc"]) == 2
    capsys.readouterr()
    assert cli.main(["check", str(tmp_path / "missing.zip")]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"lambda-kit: error: no such zip ({tmp_path / 'missing.zip'})"


def test_native_cache_gives_the_same_findings_without_reading_again(tmp_path, base_files, wheels):
    path = write_zip(
        tmp_path / "bad.zip", {**base_files, **wheel_members(wheels["aarch64"]), **wheel_members(wheels["glibc-2.34"])}
    )
    cache = tmp_path / "native.json"
    first = audit.audit_zip(path, runtime="3.11", native_cache=cache)
    assert first.ids() == ["native-arch", "native-glibc"]
    stored = json.loads(cache.read_text())
    remembered = stored["entries"]
    assert len(remembered) == 2 and all(v[0] == "elf" for v in remembered.values())
    # Changed without its digest: ignored with a warning, the files read again, the cache rewritten.
    key = next(k for k in remembered if k.startswith("markupsafe/"))
    remembered[key] = ["elf", "x86_64", 2, 17]
    cache.write_text(json.dumps(stored))
    warned = []
    assert audit.audit_zip(path, runtime="3.11", native_cache=cache, warn=warned.append).ids() == first.ids()
    assert len(warned) == 1 and "SHA-256 mismatch" in warned[0]
    assert json.loads(cache.read_text())["entries"][key][1] == "arm64"
    cache.write_text("{not json")
    assert audit.audit_zip(path, runtime="3.11", native_cache=cache, warn=warned.append).ids() == first.ids()
    assert len(warned) == 2
    # Poisoned with a matching digest: findings now come from it, which proves it is read.
    entries = json.loads(cache.read_text())["entries"]
    entries[key] = ["elf", "x86_64", 2, 17]
    digest = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
    cache.write_text(json.dumps({"sha256": digest, "entries": entries}))
    assert audit.audit_zip(path, runtime="3.11", native_cache=cache).ids() == ["native-glibc", "native-abi"]


def test_plain_zips_and_others_are_audited_alike(tmp_path, base_files, wheels):
    """A plain zip's central directory is read with struct; one with an archive comment (or zip64
    records) goes through zipfile. The same entries give the same report either way."""
    link = zip_entry("current.py")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    files = {**base_files, **wheel_members(wheels["aarch64"]), "../evil.py": b"x", ".env": b"A=1\n", "Pipfile": b""}
    plain = write_zip(tmp_path / "plain.zip", files, modes={"app.py": 0o600}, extra_infos=[(link, b"app.py")])
    commented = tmp_path / "commented.zip"
    commented.write_bytes(plain.read_bytes())
    with zipfile.ZipFile(commented, "a") as zf:
        zf.comment = b"written elsewhere"
    reports = []
    for path in (plain, commented):
        report = audit.audit_zip(path, runtime="3.11", arch="x86_64", handler="app.handler")
        reports.append([(f.id, f.entries) for f in report.findings])
    assert zipreader.read_directory(plain) is not None and zipreader.read_directory(commented) is None
    assert reports[0] == reports[1]
    assert sorted(rule for rule, _ in reports[0]) == sorted(
        ["perm-file", "leftover-pipfile", "leftover-secret", "zip-dotdot", "zip-symlink", "native-arch"]
    )
