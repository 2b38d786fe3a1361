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

pytestmark = [pytest.mark.corpus, pytest.mark.network]

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
def ranking() -> list[tuple[int, str]]:
    assert corpus.RANKING.is_file(), f"the ranking is missing: {corpus.RANKING}"
    return corpus.read_ranking()


def test_the_most_downloaded_native_packages_audit_clean(ranking, tmp_path):
    x86, arm = parse_target("3.12-x86_64"), parse_target("3.11-arm64")
    selection = corpus.select(CORPUS_CACHE, ranking, [x86], X86_PACKAGES)
    first = {item["package"] for item in selection[x86.key]["native"][:ARM_PACKAGES]}
    arm_selection = corpus.select(CORPUS_CACHE, [(r, n) for r, n in ranking if n in first], [arm])
    selection.update(arm_selection)
    assert len(selection[x86.key]["native"]) == X86_PACKAGES
    records = corpus.sweep(CORPUS_CACHE, selection)
    corpusreport.write({"run": corpus.run_facts(ranking, 2, False), "selection": selection, "records": records},
                       tmp_path / "corpus.json", tmp_path / "corpus.md")  # fmt: skip
    audited = [r for r in records if r["status"] == "audited"]
    assert len(audited) >= X86_PACKAGES * 0.9, [(r["package"], r["status"], r.get("reason")) for r in records]
    bad = failures(records)
    assert not bad, f"{bad.count(chr(10)) + 1} packages fail (summary: {tmp_path / 'corpus.md'}):\n{bad}"
