"""Issue 23, CI's part of the corpus: the 100 most downloaded packages whose file for python3.12
x86_64 is a native wheel, and the first ARM_PACKAGES of them for python3.11 arm64, each zipped as
the kit zips it (with its dependencies) and audited: no error from any rule. The wheels, index
pages and resolutions stay in CORPUS_CACHE for the rest of the run (and a laptop's next one).
`make corpus` sweeps all 1,000 packages of the ranking for four targets."""

from __future__ import annotations

import os
from pathlib import Path

import corpus
import corpusreport
import pytest
from corpuswork import parse_target
from helpers import docker_problem

X86_PACKAGES = 100
ARM_PACKAGES = 10
CORPUS_CACHE = Path(os.environ.get("LAMBDA_KIT_CORPUS_CACHE", corpus.DEFAULT_CACHE))


def failures(records: list[dict]) -> str:
    """Every failing package, its rule and its first entries, one line each."""
    lines = []
    for r in corpusreport.failing(records):
        rules = "; ".join(f"{rule}: {', '.join(entries[:3])}" for rule, entries in sorted(r.get("errors", {}).items()))
        loader = "; ".join(r.get("loader", {}).get("mismatches", [])[:3])
        lines.append(
            f"{r['target']} {r['package']} {r['version']}: {r['status']} {rules or r.get('reason', '')} {loader}"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> list[dict]:
    """The sweep, once for the module; with the real loader on x86_64 when Docker can run it."""
    assert corpus.RANKING.is_file(), f"the ranking is missing: {corpus.RANKING}"
    ranking = corpus.read_ranking()
    x86, arm = parse_target("3.12-x86_64"), parse_target("3.11-arm64")
    selection = corpus.select(CORPUS_CACHE, ranking, [x86], X86_PACKAGES)
    assert len(selection[x86.key]["native"]) == X86_PACKAGES
    first = {item["package"] for item in selection[x86.key]["native"][:ARM_PACKAGES]}
    selection.update(corpus.select(CORPUS_CACHE, [(r, n) for r, n in ranking if n in first], [arm]))
    loader = docker_problem() is None
    records = corpus.sweep(CORPUS_CACHE, selection, loader=loader)
    folder = tmp_path_factory.mktemp("corpus")
    result = {"run": corpus.run_facts(ranking, corpus.JOBS, loader), "selection": selection, "records": records}
    corpusreport.write(result, folder / "corpus.json", folder / "corpus.md")
    print(corpusreport.counts_line(result), f"(summary: {folder / 'corpus.md'})")
    return records


def test_the_most_downloaded_native_packages_audit_clean(swept):
    audited = [r for r in swept if r["status"] == "audited"]
    assert len(audited) >= X86_PACKAGES * 0.9, [(r["package"], r["status"], r.get("reason")) for r in swept]
    bad = failures([r for r in swept if r.get("errors") or r["status"] in corpusreport.PROBLEMS])
    assert not bad, f"{bad.count(chr(10)) + 1} packages fail:\n{bad}"


@pytest.mark.docker
def test_the_audit_judges_each_extension_module_as_the_real_loader(swept):
    x86 = [r for r in swept if r["target"] == "3.12-x86_64" and r["status"] == "audited"]
    assert x86 and all("loader" in r for r in x86)
    assert sum(r["loader"]["modules"] for r in x86) > 1000  # extension modules the loader was asked about
    bad = failures([r for r in x86 if not r["loader"]["equal"]])
    assert not bad, f"{bad.count(chr(10)) + 1} packages where the audit and ld.so disagree:\n{bad}"
