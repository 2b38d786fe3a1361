"""The container contract (scripts/lambda_kit/common/contract.py) against the Dockerfiles' literals, the
staged build context, and the two sides that write and read its files and lines."""

import json
import os
import re
import subprocess
import sys
from pathlib import PurePosixPath

import pytest
from helpers import PROJECTS, ROOT
from lambda_kit.builders import context
from lambda_kit.common import contract
from lambda_kit.common.errors import KitError, StepError, UsageError
from lambda_kit.lock.lockfile import Lock
from lambda_kit.net import netconfig
from lambda_kit.plan.network import NetworkSettings

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
SMOKE_DOCKERFILE = (ROOT / "scripts" / "smoke.Dockerfile").read_text(encoding="utf-8")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [tuple(ln.split(None, 1)) for ln in joined.splitlines() if ln.strip()]


def copies(text: str) -> list[tuple[list[str], str]]:
    """COPY instructions as (sources, destination)."""
    out = []
    for name, args in instructions(text):
        if name == "COPY":
            *sources, dest = args.split()
            out.append((sources, dest))
    return out


def test_build_arguments_are_the_dockerfiles_args():
    declared = [
        arg.split("=", 1)[0] for name, args in instructions(DOCKERFILE) if name == "ARG" for arg in args.split()
    ]
    passed = contract.BuildArguments("img", "3.12").as_build_args()
    assert sorted(declared) == sorted(passed)
    back = contract.BuildArguments.from_environment(
        contract.BuildArguments("img", "3.12", slim=True, compile=True, target_arch="arm64").as_build_args()
    )
    assert back == contract.BuildArguments("img", "3.12", True, True, "arm64")


@pytest.mark.parametrize("text", [DOCKERFILE, SMOKE_DOCKERFILE], ids=["build", "smoke"])
def test_secret_ids_are_the_contracts(text):
    ids = re.findall(r"--mount=type=secret,id=([\w.-]+)", text)
    assert ids and set(ids) == {contract.PIP_SETTINGS_ID, contract.CA_BUNDLE_ID, contract.CLIENT_CERT_ID}


def test_paths_in_the_image_are_the_contracts():
    (workdir,) = [args for name, args in instructions(DOCKERFILE) if name == "WORKDIR"]
    assert PurePosixPath(workdir) == contract.ROOT
    assert f"PYTHONPATH={contract.KIT}" in DOCKERFILE.split()
    # The context's folders land where the contract says (relative destinations are under WORKDIR).
    landed = {}
    for sources, dest in copies(DOCKERFILE):
        for source in sources:
            top = source.split("/", 1)[0]
            if top in contract.CONTEXT_FOLDERS:
                landed[top] = contract.ROOT / dest
    assert landed == contract.CONTEXT_FOLDERS
    assert f"{contract.TOOLS_BIN.relative_to(contract.ROOT)}/python -m lambda_kit.steps.incontainer deps" in DOCKERFILE
    assert f"{contract.OUT}/{contract.DEPS_ZIP}" in DOCKERFILE  # the header says what the build leaves
    assert f"COPY net/ {contract.NET}/" in SMOKE_DOCKERFILE


def test_the_tools_layer_copies_the_common_and_net_folders_only(tmp_path):
    """Step 1 must not be invalidated by changes elsewhere in the kit: it copies the context's setup/
    folder, which holds of the kit the folders netconfig imports from (contract.TOOLS_PACKAGES)."""
    step_one = DOCKERFILE[: DOCKERFILE.index("\n# 2.")]
    assert [s for sources, _ in copies(step_one) for s in sources] == ["setup/"]
    context.stage_build(
        tmp_path / "ctx", kit_dir=ROOT, pipfile=ROOT / "Pipfile", lock=Lock(), buildkit=False, network=NetworkSettings()
    )
    staged = sorted(p.name for p in (tmp_path / "ctx" / "setup" / "kit" / "lambda_kit").iterdir())
    assert staged == ["__init__.py", "common", "net"] == ["__init__.py", *contract.TOOLS_PACKAGES]
    context.stage_smoke(tmp_path / "smoke", kit_dir=ROOT, buildkit=False, network=NetworkSettings())
    assert [s for sources, _ in copies(SMOKE_DOCKERFILE) for s in sources] == ["net/", "setup/", "run/"]
    assert sorted(p.name for p in (tmp_path / "smoke" / "setup" / "lambda_kit").iterdir()) == staged
    assert sorted(p.name for p in (tmp_path / "smoke" / "run" / "lambda_kit").iterdir()) == ["invoke", "zips"]


def test_netconfig_runs_from_the_tools_layer_folders_alone(tmp_path, monkeypatch):
    """As in the tools layer: the default index is probed first (PyPI here: no settings handed in
    on this machine), then the command runs with it; a dead index is one line, before the command."""
    context.copy_packages(ROOT, tmp_path, contract.TOOLS_PACKAGES)
    probe = "import os; print(os.environ.get('PIP_INDEX_URL', 'unset'))"
    settings = tmp_path / "net" / contract.PIP_SETTINGS_ID
    settings.parent.mkdir()
    settings.write_text("INDEX_URL=http://127.0.0.1:9/simple\nTIMEOUT=3\n")
    staged = tmp_path / "lambda_kit" / "common" / "contract.py"  # where the legacy builder puts the settings
    text = staged.read_text()
    assert '\nNET = ROOT / "net"' in text
    staged.write_text(text.replace('\nNET = ROOT / "net"', f"\nNET = PurePosixPath({str(tmp_path / 'net')!r})", 1))
    done = subprocess.run(
        [sys.executable, "-E", "-s", "-m", "lambda_kit.net.netconfig", sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "lambda-kit: error: package index 127.0.0.1:9 (INDEX_URL): connection refused",
        "hint: check the address and port in INDEX_URL, and that the index is up",
    ]


def test_the_staged_context_is_what_the_dockerfile_copies(tmp_path):
    project = PROJECTS / "local-lib"
    lock = json.loads((project / "Pipfile.lock").read_text())
    ctx = tmp_path / "ctx"
    network = NetworkSettings(index_url="https://mirror.example/simple")
    context.stage_build(
        ctx, kit_dir=ROOT, pipfile=project / "Pipfile", lock=Lock(lock), buildkit=False, network=network
    )
    for sources, _ in copies(DOCKERFILE):
        for source in sources:
            assert (ctx / source).exists(), source
    # Each folder is laid out as the image's ROOT: what it holds lands where the contract says.
    for folder, holds in (("setup", contract.SETUP_HOLDS), ("build", contract.BUILD_HOLDS)):
        assert sorted(p.name for p in (ctx / folder).iterdir()) == sorted(holds)
        assert all(contract.CONTEXT_FOLDERS[folder] / name == dest for name, dest in holds.items())
    assert (ctx / "build" / contract.OUT.name / contract.WHEELS).is_dir()
    mapping = json.loads((ctx / "build" / contract.PATHS.name / contract.PATHS_MAP.name).read_text())
    assert mapping and all(PurePosixPath(v).is_relative_to(contract.PATHS) for v in mapping.values())
    assert (ctx / "setup" / contract.NET.name / contract.PIP_SETTINGS_ID).is_file()


def test_settings_file_written_by_the_host_is_read_by_the_image(tmp_path, monkeypatch):
    network = NetworkSettings(
        index_url="https://mirror.example/simple",
        extra_index_urls=["https://a.example/simple", "https://b.example/simple"],
        lock_source_env={"TOKEN": "s3cret", "USER": "me"},
    )
    (tmp_path / contract.PIP_SETTINGS_ID).write_text(network.settings_text(), encoding="utf-8")
    monkeypatch.setattr(contract, "SECRETS", PurePosixPath(tmp_path))
    built = netconfig.BuildNetwork.current()
    assert built.settings == {
        "INDEX_URL": "https://mirror.example/simple",
        "EXTRA_INDEX_URLS": "https://a.example/simple https://b.example/simple",
        "ENV_TOKEN": "s3cret",
        "ENV_USER": "me",
    }
    lock_sources = [
        {"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True},
        {"name": "private", "url": "https://${USER}:$TOKEN@private.example/simple", "verify_ssl": False},
    ]
    sources = built.sources(lock_sources)
    # A package without an index: the first source (INDEX_URL takes its place), then EXTRA_INDEX_URLS.
    env, cleanup = built.pip_environment(built.route(sources), base={"PIP_FIND_LINKS": "/x", "HOME": "/root"})
    assert cleanup == []
    assert env["PIP_INDEX_URL"] == "https://mirror.example/simple"
    assert env["PIP_EXTRA_INDEX_URL"].split() == ["https://a.example/simple", "https://b.example/simple"]
    assert "PIP_FIND_LINKS" not in env and env["HOME"] == "/root" and env["PIP_CONFIG_FILE"] == os.devnull
    # A package pinned to the private source: that source alone, trusted as its verify_ssl says.
    env, _ = built.pip_environment(built.route(sources, "private"))
    assert env["PIP_INDEX_URL"] == "https://me:s3cret@private.example/simple" and "PIP_EXTRA_INDEX_URL" not in env
    assert env["PIP_TRUSTED_HOST"] == "private.example"
    with pytest.raises(KeyError):
        built.route(sources, "nowhere")
    assert netconfig.redactor(built.secrets())("https://me:s3cret@private.example") == "https://me:***@private.example"
    assert contract.referenced_names("https://${USER}:$TOKEN@x/${USER}") == ["USER", "TOKEN", "USER"]
    assert contract.expand("https://${NOPE}@x", {}) == "https://${NOPE}@x"


@pytest.mark.parametrize(
    "error",
    [
        StepError("pip install failed: no wheel", "pin another version"),
        KitError("the handler failed", "Runtime.ImportModuleError: x", hint="fix it"),
        UsageError("unknown Python runtime", "3.99"),
    ],
)
@pytest.mark.parametrize("prefix", ["", "#9 12.34 ", "\x1b[31m"], ids=["plain", "buildkit", "legacy-colour"])
def test_error_lines_printed_in_the_image_are_parsed_back_on_the_host(error, prefix):
    log = "Step 9/11 : RUN ...\nCollecting yaml\n" + "".join(prefix + line + "\n" for line in error.lines()) + "done\n"
    assert contract.parse_error(log) == (str(error), error.hint or None)
    assert error.lines()[0] == f"lambda-kit: error: {error}"


def test_the_last_error_in_a_log_wins_and_internal_errors_keep_their_prefix():
    log = "lambda-kit: error: first\nhint: one\nlambda-kit: internal error: ValueError: 'x'\n"
    assert contract.parse_error(log) == ("internal error: ValueError: 'x'", None)
    assert contract.parse_error("no kit line at all\nhint: unrelated\n") is None
