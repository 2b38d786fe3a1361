"""The kit's wheel installer against pip itself on real wheels from PyPI: the same files, byte for
byte, as the pinned pip's `install --target` (after the kit drops bin/)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from helpers import ROOT, kit_target, pip_target, tree_files
from lambda_kit.common import runtimes
from lambda_kit.lock import lockfile
from lambda_kit.steps import buildsteps
from lambda_kit.steps.target import Target


def test_real_wheels_from_pypi_install_as_pip_installs_them(tmp_path):
    """The small bench set's lock (pydantic-core, pyyaml, requests...): the files pip chose for
    python3.11 x86_64, installed by pip and by the kit."""
    lock = lockfile.load_pipfile_lock(ROOT / "bench" / "projects" / "small" / "a" / "Pipfile.lock")
    runtime = runtimes.lookup("3.11")
    plan = lockfile.install_plan(lock, runtimes.target_environment(runtime, "x86_64"))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(plan.requirements_text())
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--dest",
            str(wheels),
            *Target(runtime, "x86_64").pip_args(),
            "-r",
            str(requirements),
        ],
        check=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    files = sorted(wheels.glob("*.whl"))
    assert len(files) == len(plan.index)
    pip_target(files, tmp_path / "pip", [f"{p.name}{p.version}" for p in plan.index])
    origins = kit_target(files, tmp_path / "kit")
    by_pip, by_kit = tree_files(tmp_path / "pip"), tree_files(tmp_path / "kit")
    assert len(by_kit) > 300 and sorted(by_kit) == sorted(by_pip)
    assert [name for name in by_pip if by_pip[name] != by_kit[name]] == []
    # Every file a wheel holds has its stream (maturin's wheels and setuptools' alike): only the
    # installer's own files have none. Packed with those streams, deps.zip reads back as the tree.
    generated = {n for n in by_kit if n.endswith(("/INSTALLER", "/REQUESTED", "/RECORD"))}
    assert sorted(set(by_kit) - set(origins)) == sorted(generated)
    packed = tmp_path / "deps.zip"
    buildsteps.pack_dependencies(tmp_path / "kit", packed, False, origins)
    with zipfile.ZipFile(packed) as zf:
        assert zf.testzip() is None
        assert {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()} == {
            n: d for n, (d, _) in by_kit.items()
        }
