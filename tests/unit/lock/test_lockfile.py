"""Pipfile.lock -> install plan: hashes, markers, local paths and VCS entries."""

import pytest
from helpers import PROJECTS, ROOT
from lambda_kit.lock import lockfile
from lambda_kit.lock.lockfile import Lock

PY311 = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def test_sample_lock_plans_every_package_with_its_hashes():
    lock = lockfile.load_pipfile_lock(ROOT / "Pipfile.lock")
    plan = lockfile.install_plan(lock, PY311)
    assert {p.name for p in plan.index} == set(lock.entries)
    pydantic_core = next(p for p in plan.index if p.name == "pydantic-core")
    assert pydantic_core.version == lock.entries["pydantic-core"]["version"]
    assert len(pydantic_core.hashes) == len(lock.entries["pydantic-core"]["hashes"]) > 10
    line = pydantic_core.requirement_line()
    assert line.startswith("pydantic-core==") and line.count("--hash=sha256:") == len(pydantic_core.hashes)
    assert "pytest" not in plan.names()
    assert lockfile.develop_only(lock) == ["iniconfig", "packaging", "pluggy", "pygments", "pytest"]
    assert [s["url"] for s in plan.sources] == ["https://pypi.org/simple"]
    assert {p.index for p in plan.index} <= {"", "pypi"}  # each entry's own source, when the lock names one


def test_editable_path_is_local_and_false_marker_is_skipped():
    lock = lockfile.load_pipfile_lock(PROJECTS / "local-lib" / "Pipfile.lock")
    plan = lockfile.install_plan(lock, PY311)
    assert plan.local == [lockfile.LocalPackage("orders-common", "./libs/orders-common")]
    assert [p.name for p in plan.index] == ["six"]
    assert plan.skipped == [("tomli", "python_version < '3.11'")]
    # On Python 3.10 the marker holds, and tomli has no pinned version: refused, not guessed.
    with pytest.raises(lockfile.LockError, match="tomli is not pinned"):
        lockfile.install_plan(lock, {**PY311, "python_version": "3.10", "python_full_version": "3.10.13"})


def test_vcs_entry_becomes_a_pinned_url():
    lock = Lock({"default": {"Lib": {"git": "https://example.invalid/lib.git", "ref": "0123abc"}}})
    assert lockfile.install_plan(lock, PY311).urls == [
        lockfile.UrlPackage("lib", "lib @ git+https://example.invalid/lib.git@0123abc")
    ]


def test_index_package_without_hashes_is_refused():
    lock = Lock({"default": {"six": {"version": "==1.17.0"}}})
    with pytest.raises(lockfile.LockError, match=r"six==1.17.0 has no hashes"):
        lockfile.install_plan(lock, PY311)


def test_broken_lock_file_is_one_clear_error(tmp_path):
    path = tmp_path / "Pipfile.lock"
    path.write_text("{ not json")
    with pytest.raises(lockfile.LockError, match="not valid JSON"):
        lockfile.load_pipfile_lock(path)
    with pytest.raises(lockfile.LockError, match="no lock file"):
        lockfile.load_pipfile_lock(tmp_path / "missing.lock")


def test_markers_are_evaluated_for_the_target_not_the_host():
    lock = Lock(
        {"default": {"x": {"version": "==1", "hashes": ["sha256:00"], "markers": "platform_machine == 'aarch64'"}}}
    )
    assert lockfile.install_plan(lock, PY311).skipped == [("x", "platform_machine == 'aarch64'")]
    assert [p.name for p in lockfile.install_plan(lock, {**PY311, "platform_machine": "aarch64"}).index] == ["x"]
