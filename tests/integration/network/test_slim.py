"""SLIM=1 on real wheels from PyPI: botocore's service models lose their API reference text and
nothing else, RECORD stays true, the result is the same bytes every time, and clients still work."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lambda_kit.steps import slimming

# The versions of the benchmark's large set (bench/projects/large/a/Pipfile.lock), wheels only.
WHEELS = """\
botocore==1.44.8 \
    --hash=sha256:76342a76c338701db80dcb8afe1c9bd079283d6fffbb9d881442abb02a215043 \
    --hash=sha256:945b783c1a1259e2a8b078f3f3dd40fae32ea84ab01d3a9953af6b378da7108a
jmespath==1.1.0 \
    --hash=sha256:472c87d80f36026ae83c6ddd0f1d05d4e510134ed462851fd5f754c8c3cbb88d \
    --hash=sha256:a5663118de4908c91729bea0acadca56526eb2698e83de10cd116ae0f4e97c64
python-dateutil==2.9.0.post0 \
    --hash=sha256:37dd54208da7e1cd875388217d5e00ebd4179249f90fb72437e91a35459a0ad3 \
    --hash=sha256:a8b2bc7bffae282281c8140a97d3aa9c14da0b136dfe83f850eea9a5f7470427
six==1.17.0 \
    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274 \
    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81
urllib3==2.8.0 \
    --hash=sha256:0cf3cae568d36aa9576b28dfb35f11328f1cb974ca7647d9475ebb86c75ac6e3 \
    --hash=sha256:63bf2ead4c879426ebf22ef2a781eeb4aa3b4ae798a0435506f8687fd5bb9b63
"""


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    (folder / "requirements.txt").write_text(WHEELS)
    requirements = folder / "requirements.txt"
    download = [sys.executable, *"-m pip download --quiet --no-deps --only-binary=:all: --require-hashes".split()]
    subprocess.run([*download, "-r", str(requirements), "-d", str(folder)], check=True, timeout=600)
    return folder


def unpack(wheels: Path, tree: Path) -> Path:
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tree)
    return tree


def models(tree: Path) -> dict[str, bytes]:
    return {
        p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.glob("botocore/data/*/*/service-2.json*"))
    }


def without_documentation(node):
    if isinstance(node, dict):
        return {
            k: without_documentation(v) for k, v in node.items() if not (k == "documentation" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [without_documentation(v) for v in node]
    return node


def test_slim_strips_botocore_api_reference_and_nothing_else(wheels, tmp_path):
    tree = unpack(wheels, tmp_path / "a")
    before = models(tree)
    other_before = {
        p: p.read_bytes()
        for p in tree.rglob("*")
        if p.is_file() and "service-2.json" not in p.name and p.name != "RECORD"
    }
    slimming.slim(tree, None)
    after = models(tree)
    assert after.keys() == before.keys() and len(after) > 400
    assert sum(map(len, after.values())) < 0.5 * sum(map(len, before.values()))
    for name in before:
        old = json.loads(gzip.decompress(before[name]) if name.endswith(".gz") else before[name])
        new = json.loads(gzip.decompress(after[name]) if name.endswith(".gz") else after[name])
        # Shapes, members, types, limits, errors, metadata: all as they were.
        assert without_documentation(new) == without_documentation(old), name
    # Everything else is untouched (packages' test folders aside: there are none in these wheels).
    assert {p: p.read_bytes() for p in other_before if p.exists()} == other_before
    assert all(p.exists() for p in other_before)
    # Every RECORD still names exactly the files that ship, with their hashes.
    for record in tree.glob("*.dist-info/RECORD"):
        for row in csv.reader(record.read_text().splitlines()):
            if row[1]:
                data = (tree / row[0]).read_bytes()
                assert (
                    row[1] == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                )
                assert row[2] == str(len(data))
    # The same input gives the same bytes.
    again = unpack(wheels, tmp_path / "b")
    slimming.slim(again, None)
    assert models(again) == after


CLIENTS = """
import botocore.session
from botocore.exceptions import ParamValidationError
session = botocore.session.get_session()
print(len(session.get_available_services()))
for name in ("s3", "dynamodb", "lambda", "sqs", "sts", "secretsmanager", "ec2"):
    session.create_client(name, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
s3 = session.create_client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
assert "/b/k?" in url and "Signature" in url, url
try:
    s3.put_object(Key="k")
except ParamValidationError as exc:
    assert 'Missing required parameter in input: "Bucket"' in str(exc), exc
else:
    raise AssertionError("no validation error")
assert s3.can_paginate("list_objects_v2") and s3.get_waiter("bucket_exists")
doc = s3.put_object.__doc__.expandtabs()  # a lazy docstring: rendered on first use
assert ":param Bucket:" in doc and "See the AWS API reference." in doc
print("ok")
"""


def test_botocore_clients_still_work_after_slim(wheels, tmp_path):
    tree = unpack(wheels, tmp_path / "t")
    slimming.slim(tree, None)
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); exec({CLIENTS!r})"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    services, ok = result.stdout.split()
    assert int(services) > 400 and ok == "ok"
