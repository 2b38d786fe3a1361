"""The Target: pip's options for a runtime and architecture, and the wheel tags pip accepts with
them, in pip's own order (pip's TargetPython is the reference)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lambda_kit.common import runtimes
from lambda_kit.steps.target import Target
from lambda_kit.steps.toolchain import Toolchain


def test_pip_options_for_a_cross_install_and_for_the_targets_own_machine():
    runtime = runtimes.lookup("3.13")
    args = Target(runtime, "arm64").pip_args()
    assert args[:5] == ["--only-binary=:all:", "--python-version", "3.13", "--implementation", "cp"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--abi"] == ["cp313", "abi3", "none"]
    platforms = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert platforms == runtimes.manylinux_tags(runtime, "arm64")
    native = Target(runtime, "arm64", sources_allowed=True).pip_args()
    assert "--only-binary=:all:" not in native and native[-2:] == ["--platform", "linux_aarch64"]
    assert Target(runtime, "arm64").key() != Target(runtime, "arm64", sources_allowed=True).key()
    assert Target(runtime, "x86_64").environment()["platform_machine"] == "x86_64"
    assert Target(runtime, "arm64").name == "python3.13 arm64"


def test_markers_are_the_interpreters_own_only_on_the_targets_machine():
    """A build on the target's machine (the image's Python is the runtime's) evaluates the lock's
    markers with that interpreter (its exact patch version, for python_full_version markers); a
    build for another machine with the Target's model of the runtime."""
    runtime = runtimes.lookup("3.11")
    cross = Toolchain(python=Path("python"), target=Target(runtime, "arm64"))
    native = Toolchain(python=Path("python"), target=Target(runtime, "x86_64", sources_allowed=True))
    assert cross.environment == runtimes.target_environment(runtime, "arm64")
    assert native.environment is None and Toolchain(python=Path("python")).environment is None
    assert native.target_args == Target(runtime, "x86_64", sources_allowed=True).pip_args()


@pytest.mark.parametrize("sources_allowed", [False, True])
def test_target_tags_are_pips_own_in_pips_order(sources_allowed):
    from pip._internal.models.target_python import TargetPython

    for version in ("3.10", "3.11", "3.12", "3.13", "3.14"):
        for arch in ("x86_64", "arm64"):
            target = Target(runtimes.lookup(version), arch, sources_allowed)
            args = target.pip_args()
            platforms = [v for o, v in zip(args, args[1:], strict=False) if o == "--platform"]
            abis = [v for o, v in zip(args, args[1:], strict=False) if o == "--abi"]
            pip_target = TargetPython(
                platforms=platforms,
                py_version_info=tuple(int(p) for p in version.split(".")),
                abis=abis,
                implementation="cp",
            )
            assert [str(t) for t in target.tags] == [str(t) for t in pip_target.get_sorted_tags()]
