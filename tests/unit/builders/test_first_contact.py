"""A newcomer's first run, the parts: image names valid whatever the folder is called, pull
failures in plain words, and progress counted from what both builders' logs say."""

from __future__ import annotations

import io
import re

import pytest
from lambda_kit.builders import docker
from lambda_kit.builders.progress import BuildProgress
from lambda_kit.common import runtimes
from lambda_kit.plan.buildplan import image_tag

# Docker's reference grammar (distribution/reference): path components of lower-case letters and
# digits joined by one separator (`.`, `_`, `__` or a run of `-`); a tag of up to 128 word characters.
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REFERENCE = re.compile(rf"^{COMPONENT}(?:/{COMPONENT})*:[\w][\w.-]{{0,127}}$")

AWKWARD_NAMES = [
    "acc-_3yi0xyi",
    "my_-lambda",
    "old..copy",
    "__init__",
    "..hidden",
    "_leading",
    "-dash-",
    "UPPER Case",
    "Ünïcödé-fünctiön",
    "日本語",
    "a" * 200,
    "x.-_.y",
    "a__b",
    "a___b",
    "tab\there",
    "new\nline",
    "-",
]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_image_tags_are_valid_docker_references_whatever_the_folder_is_called(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    tag = image_tag(folder, runtimes.lookup("3.12"), "x86_64")
    assert REFERENCE.match(tag), tag
    assert len(tag) <= 255


def test_pull_failures_are_classified_from_dockers_words():
    network = (
        'Error response from daemon: Get "https://public.ecr.aws/v2/": dial tcp: lookup public.ecr.aws: no such host'
    )
    assert docker.pull_problem(network) == "no network to the registry"
    assert (
        docker.pull_problem("Error response from daemon: manifest for x/y:z not found: manifest unknown") == "not found"
    )
    assert docker.pull_problem("Error response from daemon: unauthorized: authentication required") == "access denied"
    assert (
        docker.pull_problem("invalid reference format: repository name must be lowercase") == "not a valid image name"
    )


def test_progress_counts_what_both_builders_logs_say():
    ticks = iter(range(0, 1000, 7))
    progress = BuildProgress(total=3, out=io.StringIO(), live=False, every=10, clock=lambda: next(ticks))
    for line in [
        "Step 5/11 : RUN --mount=... tools/bin/python -m lambda_kit.steps.incontainer deps",  # legacy builder
        "lambda-kit: lock verified against Pipfile (pipenv verify)",
        "#9 3.21 Downloading idna-3.10-py3-none-any.whl (70 kB)",  # BuildKit's prefix
        "#9 3.40 Saved /opt/lambda-kit/out/wheels/idna-3.10-py3-none-any.whl",
        "Downloading pyyaml-6.0.2-cp311-manylinux_2_17_x86_64.whl (1.2 MB)",
        "Saved ./wheels/pyyaml-6.0.2-cp311-manylinux_2_17_x86_64.whl",
        "File was already downloaded /opt/lambda-kit/out/wheels/six-1.17.0-py2.py3-none-any.whl",
        "lambda-kit: installing",
    ]:
        progress.feed(line)
    assert progress.line() == (
        "lambda-kit: ... 7s; image step 5/11; packages: 3 of 3 fetched (2 downloaded, 1.3 MB; 1 reused), "
        "0 of 3 installed; now: installing"
    )
    progress.feed("lambda-kit: 2 wheels unpacked (hash-checked against the lock)")  # the kit's installer
    progress.feed("Successfully installed idna-3.10")  # pip, for a source distribution
    progress.feed("lambda-kit: installed 3 hash-checked and 0 local/VCS packages from [packages]")
    assert "3 of 3 installed; now: installed 3 hash-checked" in progress.line()
