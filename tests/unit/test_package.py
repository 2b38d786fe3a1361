"""The helper's docker dance with a fake runner: command order, cleanup on failure, error text."""

import base64
import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import ROOT
from lambda_kit import cli
from lambda_kit.builders import docker
from lambda_kit.common.errors import CommandFailed, KitError, UsageError
from lambda_kit.outputs import OutputRecords
from lambda_kit.package import PackageSettings, package
from lambda_kit.plan.network import NetworkSettings

SAMPLE_VERSIONS = {n: e["version"][2:] for n, e in json.loads((ROOT / "Pipfile.lock").read_text())["default"].items()}


def zip_bytes(names, versions=SAMPLE_VERSIONS):
    """A deps.zip like the build's: the given files plus a dist-info folder for every package of
    `versions` (by default the sample lock's, so the audit passes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100644 << 16
            zf.writestr(info, "def handler(event, context):\n    return {}\n")
        for dist, version in versions.items():
            info = zipfile.ZipInfo(f"{dist}-{version}.dist-info/METADATA")
            info.external_attr = 0o100644 << 16
            zf.writestr(info, f"Name: {dist}\n")
    return buf.getvalue()


class FakeDocker:
    """Records argv; plays docker's part, writing the files the real commands would write."""

    def __init__(self, fail_on=None, build_log="", versions=SAMPLE_VERSIONS, buildkit=False):
        self.calls = []
        self.fail_on = fail_on
        self.build_log = build_log
        self.versions = versions
        self.buildkit = buildkit

    def __call__(self, argv, *, log_file=None, timeout=None, env=None):
        self.calls.append(list(argv))
        verb = " ".join(argv[1:3]) if argv[1] in ("buildx", "image") else argv[1]
        if log_file is not None:
            Path(log_file).write_text(self.build_log)
        if self.fail_on == verb:
            if isinstance(self.fail_on_exc, BaseException):
                raise self.fail_on_exc
            raise CommandFailed(argv, 1, self.build_log or f"Error: {verb} went wrong")
        if verb == "version":
            return "20.10.24\n"
        if verb == "buildx version" and not self.buildkit:
            raise CommandFailed(argv, 1, "docker: 'buildx' is not a docker command.")
        if verb == "cp":  # the image's out/ folder: the packed dependencies and their digest
            out = Path(argv[3])
            out.mkdir()
            data = zip_bytes(("yaml/__init__.py",), self.versions)
            (out / "deps.zip").write_bytes(data)
            (out / "deps.zip.sha256").write_text(self.digest or hashlib.sha256(data).hexdigest() + "\n")
        return ""

    fail_on_exc = None
    digest = None

    def verbs(self):
        return [" ".join(c[1:3]) if c[1] in ("buildx", "image") else c[1] for c in self.calls]


@pytest.fixture
def fake_path(tmp_path, monkeypatch):
    """A `docker` on PATH for the presence check; the fake runner answers the calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    return bin_dir


@pytest.fixture
def settings(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "lambdas", project / "lambdas")
    shutil.copy2(ROOT / "Pipfile", project / "Pipfile")
    shutil.copy2(ROOT / "Pipfile.lock", project / "Pipfile.lock")
    out = project / "build.zip"
    out.write_bytes(b"previous zip")
    OutputRecords(project / ".lambda-kit").record(out, hashlib.sha256(b"previous zip").hexdigest())  # a kit build's
    return PackageSettings(
        kit_dir=ROOT,
        pipfile=project / "Pipfile",
        src=project / "lambdas",
        out=out,
        state_dir=project / ".lambda-kit",
        runtime="3.11",
        base_image="stand-in:latest",
        builder="docker",
    )


def run_package(settings, fake):
    lines = []
    result = package(settings, fake, say=lines.append)
    return result, lines


def test_success_runs_build_create_cp_rm_in_order_and_replaces_the_zip(settings, fake_path):
    fake = FakeDocker()
    result, lines = run_package(settings, fake)
    assert fake.verbs() == ["version", "buildx version", "image inspect", "build", "create", "cp", "rm", "image prune"]
    build, create, cp, rm = fake.calls[3], fake.calls[4], fake.calls[5], fake.calls[6]
    tag = build[build.index("--tag") + 1]
    assert "--force-rm" in build and "BASE_IMAGE=stand-in:latest" in build
    assert create[-2:] == [tag, "/bin/true"]  # a command, so images without one work
    name = create[create.index("--name") + 1]
    assert cp[2] == f"{name}:/opt/lambda-kit/out/."
    assert rm == ["docker", "rm", "--force", name]
    data = settings.out.read_bytes()
    assert zipfile.ZipFile(settings.out).namelist()[-2:] == ["app.py", "pricing.yaml"]  # the code after the deps
    assert "yaml/__init__.py" in zipfile.ZipFile(settings.out).namelist()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.code_sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert result.files == 3 + len(SAMPLE_VERSIONS) and result.size == len(data)
    assert "lambda-kit: audit passed (0 warnings)" in lines

    # Same dependencies, changed code: no docker at all, the code is added to the cached deps.zip.
    (settings.src / "app.py").write_text((settings.src / "app.py").read_text() + "\n# changed\n")
    untouched = FakeDocker()
    again, lines = run_package(settings, untouched)
    assert untouched.calls == [] and any("dependencies unchanged" in line for line in lines)
    assert zipfile.ZipFile(settings.out).read("app.py").endswith(b"# changed\n")
    assert [p.name for p in settings.out.parent.iterdir() if p.name.startswith(".build.zip")] == []


def test_failed_copy_still_removes_the_container_and_keeps_the_old_zip(settings, fake_path):
    fake = FakeDocker(fail_on="cp")
    with pytest.raises(CommandFailed):
        run_package(settings, fake)
    assert fake.verbs()[-2:] == ["cp", "rm"]
    assert settings.out.read_bytes() == b"previous zip"
    assert [p.name for p in settings.out.parent.iterdir() if p.name.startswith(".build.zip")] == []


def test_ctrl_c_during_copy_removes_the_container(settings, fake_path):
    fake = FakeDocker(fail_on="cp")
    fake.fail_on_exc = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        run_package(settings, fake)
    assert fake.verbs()[-1] == "rm"
    assert settings.out.read_bytes() == b"previous zip"


def test_build_failure_reports_the_kits_own_error_line(settings, fake_path):
    log = (
        "Step 12/18 : RUN tools/bin/python -m lambda_kit.steps.incontainer deps\n"
        "lambda-kit: error: Pipfile.lock is out of date: its hash no longer matches the Pipfile (pipenv verify)\n"
        "hint: run `pipenv lock` and commit the new Pipfile.lock\n"
        "The command '/bin/sh -c tools/bin/python -m lambda_kit.steps.incontainer deps' returned a non-zero code: 1\n"
    )
    fake = FakeDocker(fail_on="build", build_log=log)
    with pytest.raises(KitError) as info:
        run_package(settings, fake)
    assert str(info.value).startswith("Pipfile.lock is out of date")
    assert info.value.hint.startswith("run `pipenv lock`")
    assert "create" not in fake.verbs()
    assert settings.out.read_bytes() == b"previous zip"


def test_build_failure_without_kit_line_shows_dockers_last_lines(settings, fake_path):
    fake = FakeDocker(fail_on="build", build_log="Step 1/18 : FROM nowhere\npull access denied for nowhere\n")
    with pytest.raises(KitError) as info:
        run_package(settings, fake)
    assert str(info.value) == "docker build failed (Step 1/18 : FROM nowhere | pull access denied for nowhere)"


def test_zip_failing_the_audit_is_refused_and_the_old_zip_kept(settings, fake_path):
    fake = FakeDocker(versions={n: v for n, v in SAMPLE_VERSIONS.items() if n != "idna"})
    with pytest.raises(KitError) as info:
        run_package(settings, fake)
    assert str(info.value) == (
        "the zip failed the audit with 1 error(s), first: lock-missing ([packages] dependencies missing from the zip)"
    )
    assert fake.verbs()[-3:] == ["cp", "rm", "image prune"]
    assert settings.out.read_bytes() == b"previous zip"


def test_buildkit_passes_settings_as_secrets_and_plain_progress(settings, fake_path, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")
    settings = replace(settings, network=NetworkSettings(index_url="https://u:tok@mirror.example/simple", ca_bundle=ca))
    fake = FakeDocker(buildkit=True)
    run_package(settings, fake)
    build = next(c for c in fake.calls if c[1] == "build")
    assert build[build.index("--progress") + 1] == "plain"
    secrets = [build[i + 1] for i, a in enumerate(build) if a == "--secret"]
    assert secrets[0].startswith("id=lambda-kit-ca,src=")  # CA_BUNDLE and pip's extra bundles, as one file
    assert secrets[1].startswith("id=lambda-kit-pip,src=")
    assert not any("tok" in arg for arg in build)


def test_credentials_are_refused_on_the_legacy_builder(settings, fake_path):
    settings = replace(settings, network=NetworkSettings(extra_index_urls=["https://u:tok@mirror.example/simple"]))
    fake = FakeDocker()
    with pytest.raises(UsageError, match="legacy builder"):
        run_package(settings, fake)
    assert "build" not in fake.verbs()


def test_docker_missing_is_one_error_with_a_hint(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KitError) as info:
        run_package(settings, FakeDocker())
    assert str(info.value) == "docker is not installed or not on PATH"
    assert "install Docker" in info.value.hint and "BUILDER=local" in info.value.hint


def test_unreachable_daemon_is_one_error_naming_docker_host(settings, fake_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://build-agent.invalid:2376")
    with pytest.raises(KitError) as info:
        run_package(settings, FakeDocker(fail_on="version"))
    assert str(info.value) == "the Docker daemon is not reachable (tcp://build-agent.invalid:2376)"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"runtime": "2.7"}, "unknown Python runtime (2.7)"),
        ({"runtime": "3.9"}, "python3.9 is deprecated on Lambda"),
        ({"handler": "app"}, "the handler is not of the form module.function (app)"),
        ({"handler": "nothere.handler"}, "the handler's module is not in the source folder"),
    ],
)
def test_bad_settings_fail_before_any_docker_command(settings, fake_path, change, message):
    settings = replace(settings, **change)
    fake = FakeDocker()
    with pytest.raises(UsageError) as info:
        run_package(settings, fake)
    assert str(info.value).startswith(message)
    assert fake.calls == []


def test_cli_prints_one_line_and_a_hint_and_exits_2(settings, capsys):
    code = cli.main(
        [
            "package",
            "--pipfile",
            str(settings.pipfile),
            "--src",
            str(settings.src),
            "--out",
            str(settings.out),
            "--runtime",
            "2.7",
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err == [
        "lambda-kit: error: unknown Python runtime (2.7)",
        "hint: use one of 3.10, 3.11, 3.12, 3.13, 3.14, 3.9",
    ]


def test_container_session_removes_even_when_create_fails():
    calls = []

    def run(argv, **kw):
        calls.append(argv[1])
        if argv[1] == "create":
            raise CommandFailed(argv, 125, "Error response from daemon: No command specified")
        if argv[1] == "rm":
            raise CommandFailed(argv, 1, "Error: No such container: x")

    with pytest.raises(CommandFailed):
        with docker.ContainerSession(run, "img", {}):
            pass
    assert calls == ["create", "rm"]


def test_a_zip_that_does_not_match_the_builds_digest_is_refused(settings, fake_path):
    fake = FakeDocker()
    fake.digest = "0" * 64 + "\n"
    with pytest.raises(KitError, match="the packed dependencies changed on their way out of the build"):
        run_package(settings, fake)
    assert settings.out.read_bytes() == b"previous zip"


def test_no_docker_command_mounts_a_host_path(settings, fake_path):
    """A remote DOCKER_HOST works only if nothing relies on the engine seeing this machine's files."""
    fake = FakeDocker()
    run_package(settings, fake)
    for argv in fake.calls:
        assert not {"-v", "--volume", "--mount"} & set(argv), argv
        assert not any(a.startswith(("--volume=", "--mount=", "type=bind")) for a in argv), argv
