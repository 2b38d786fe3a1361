"""The staged build context and the network settings that travel with it."""

import json

import pytest
from helpers import PROJECTS, ROOT
from lambda_kit.builders import context
from lambda_kit.common import contract
from lambda_kit.common.errors import UsageError
from lambda_kit.lock.lockfile import Lock
from lambda_kit.plan.network import NetworkSettings, lock_source_variables, secret_files


def test_legacy_dockerfile_has_no_buildkit_syntax_and_keeps_every_step():
    original = (ROOT / "Dockerfile").read_text()
    legacy = context.legacy_dockerfile(original)
    assert "--mount=" in original
    code = [line for line in legacy.splitlines() if not line.lstrip().startswith("#")]
    assert not any("--mount" in line for line in code)
    assert not any(line.strip() == "\\" for line in code)
    steps = lambda text: [ln.split()[0] for ln in text.splitlines() if ln[:1].isupper()]  # noqa: E731
    assert steps(legacy) == steps(original)


def test_stage_sends_only_what_the_build_needs(tmp_path):
    project = PROJECTS / "local-lib"
    lock = json.loads((project / "Pipfile.lock").read_text())
    ctx = tmp_path / "ctx"
    network = NetworkSettings(ca_bundle=None, index_url="https://mirror.example/simple")
    context.stage_build(
        ctx, kit_dir=ROOT, pipfile=project / "Pipfile", lock=Lock(lock), buildkit=False, network=network
    )
    assert sorted(p.name for p in ctx.iterdir()) == ["Dockerfile", "build", "setup"]
    # setup/: what the tools layer needs; build/: the rest, laid out as in the image. No code: the host adds it.
    assert sorted(p.name for p in (ctx / "setup").iterdir()) == ["kit", "net"]
    assert sorted(p.name for p in (ctx / "setup" / "kit" / "lambda_kit").iterdir()) == sorted(
        ["__init__.py", *contract.TOOLS_PACKAGES]
    )
    build = ctx / "build"
    assert sorted(p.name for p in build.iterdir()) == ["kit", "out", "paths", "project"]
    assert sorted(p.name for p in (build / "project").iterdir()) == ["Pipfile", "Pipfile.lock"]
    assert sorted(p.name for p in (build / "kit" / "lambda_kit").iterdir()) == ["lock", "steps", "zips"]
    staged = sorted(str(p.relative_to(ctx / "build" / "kit")) for p in (build / "kit").rglob("*.py"))
    staged += [str(p.relative_to(ctx / "setup" / "kit")) for p in (ctx / "setup" / "kit").rglob("*.py")]
    assert sorted(f"scripts/{p}" for p in staged) == context.image_modules(ROOT)  # what the dependency key reads
    mapping = json.loads((build / "paths" / "map.json").read_text())
    assert set(mapping) == {"./libs/orders-common"}
    staged = build / "paths" / mapping["./libs/orders-common"].rsplit("/", 1)[1]
    assert (staged / "src" / "orders_common" / "__init__.py").is_file()
    assert (ctx / "setup" / "net" / "lambda-kit-pip").read_text() == "INDEX_URL=https://mirror.example/simple\n"


def test_buildkit_context_carries_no_settings_they_go_as_secrets(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    network = NetworkSettings(index_url="https://u:tok@mirror.example/simple", ca_bundle=ca)
    ctx = tmp_path / "ctx"
    context.stage_build(ctx, kit_dir=ROOT, pipfile=ROOT / "Pipfile", lock=Lock(), buildkit=True, network=network)
    assert list((ctx / "setup" / "net").iterdir()) == []
    files = secret_files(tmp_path, network)
    assert files["lambda-kit-ca"].read_bytes() == ca.read_bytes()  # CA_BUNDLE and pip's extra bundles, one file
    assert files["lambda-kit-pip"].read_text() == "INDEX_URL=https://u:tok@mirror.example/simple\n"
    assert files["lambda-kit-pip"].stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "settings, expected",
    [
        (NetworkSettings(index_url="https://mirror.example/simple"), False),
        (NetworkSettings(index_url="https://user:pw@mirror.example/simple"), True),
        (NetworkSettings(extra_index_urls=["https://token@mirror.example/simple"]), True),
        (NetworkSettings(lock_source_env={"TOKEN": "x"}), True),
        (NetworkSettings(index_url="https://pypi.fury.io/1aB2cD3eF4gH5iJ6kL7/acme/"), True),  # a token in the path
        (NetworkSettings(index_url="https://mirror.example/simple?token=abc"), True),
        (NetworkSettings(index_url="https://mirror.example/api/v4/projects/1234/packages/pypi/simple"), False),
    ],
)
def test_credentials_are_recognised(settings, expected):
    assert settings.has_credentials() is expected


def test_lock_source_variables_must_be_set():
    lock = Lock({"_meta": {"sources": [{"url": "https://${USER_NAME}:${TOKEN}@mirror.example/simple"}]}})
    assert lock_source_variables(lock, {"USER_NAME": "u", "TOKEN": "t"}) == {"TOKEN": "t", "USER_NAME": "u"}
    with pytest.raises(UsageError, match="not set") as info:
        lock_source_variables(lock, {"USER_NAME": "u"})
    assert info.value.value == "TOKEN"
