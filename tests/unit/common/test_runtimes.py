"""The runtimes as pip's target: manylinux tags follow each runtime's glibc."""

from __future__ import annotations

from lambda_kit.common import runtimes


def test_manylinux_tags_follow_the_runtimes_glibc():
    py311 = runtimes.manylinux_tags(runtimes.lookup("3.11"), "x86_64")
    py312 = runtimes.manylinux_tags(runtimes.lookup("3.12"), "arm64")
    assert py311[0] == "manylinux_2_26_x86_64" and "manylinux_2_28_x86_64" not in py311
    assert {"manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux1_x86_64"} <= set(py311)
    assert py312[0] == "manylinux_2_34_aarch64" and py312[-1] == "manylinux2014_aarch64"
    assert not any("manylinux1" in t or "x86_64" in t for t in py312)
