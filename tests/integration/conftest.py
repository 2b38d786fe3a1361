"""Fixtures the integration tests of more than one folder share."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import pip_download, zip_of_wheels

ZIPS = {
    "psycopg2": ["psycopg2-binary==2.9.5"],
    "psycopg3": ["psycopg==3.2.10", "psycopg-binary==3.2.10"],
    "scipy": ["scipy==1.15.3", "scikit-learn==1.6.1", "numpy==1.26.4"],
    "pillow": ["Pillow==10.1.0", "numpy==1.26.4"],
    "gevent": ["gevent==24.11.1", "greenlet==3.1.1"],
}


@pytest.fixture(scope="session")
def real_zips(tmp_path_factory) -> dict[str, Path]:
    """Zips of popular wheels with native code, as pip lays them out (the loader tests, with and
    without Docker): downloaded once per run."""
    folder = tmp_path_factory.mktemp("loader-wheels")
    return {key: zip_of_wheels(pip_download(reqs, folder / key), folder / f"{key}.zip") for key, reqs in ZIPS.items()}
