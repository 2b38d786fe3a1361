"""Real wheels from PyPI that the old file-by-file rule refused: with the loader's search, every
library the popular ones need is found, on x86_64 and on arm64, and a deleted library is named
with its chain. (Against the real loader: integration/docker/test_loader_truth.py.)"""

from __future__ import annotations

import re

from helpers import pip_download, zip_of_wheels
from lambda_kit.audit import audit


def test_popular_wheels_have_no_missing_library(real_zips):
    for key, path in real_zips.items():
        report = audit.audit_zip(path, runtime="3.11", arch="x86_64")
        assert [f for f in report.findings if f.id.startswith("native-")] == [], key


ARM64_WHEELS = [
    "Pillow==10.1.0",
    "pillow==11.0.0",
    "shapely==2.0.6",
    "h5py==3.12.1",
    "matplotlib==3.9.2",
    "pymssql==2.3.2",
    "psycopg-binary==3.2.10",
    "numpy==1.26.4",
    "scipy==1.15.3",
]


def test_popular_arm64_wheels_resolve_and_a_deleted_library_names_its_chain(tmp_path):
    """The old file-by-file rule refused each of these (e.g. shapely.libs/libgeos_c needs libgeos
    beside it, found through the extension's RPATH)."""
    for requirement in ARM64_WHEELS:
        (wheel,) = pip_download([requirement], tmp_path / requirement, arch="arm64")
        report = audit.audit_zip(zip_of_wheels([wheel], tmp_path / f"{requirement}.zip"), runtime="3.11", arch="arm64")
        assert [f for f in report.findings if f.id.startswith("native-")] == [], requirement
    (shapely,) = (tmp_path / "shapely==2.0.6").glob("*.whl")
    path = zip_of_wheels([shapely], tmp_path / "no-geos.zip", drop=[r"^shapely\.libs/libgeos-"])
    report = audit.audit_zip(path, runtime="3.11", arch="arm64")
    (needed,) = [f for f in report.findings if f.id == "native-needed"]
    assert needed.entries and all(
        re.fullmatch(
            r"shapely/\S+\.cpython-311-aarch64-linux-gnu\.so -> libgeos_c-\w+\.so\.[\d.]+ \(libgeos-\w+\.so\.[\d.]+\)",
            e,
        )
        for e in needed.entries
    ), needed.entries
