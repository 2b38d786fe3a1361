"""Every lock format read as the kit's lock model, on fixtures the real tools wrote (tests/projects/locks:
the sample function's dependency set locked by pipenv, uv 0.13.9, Poetry 2.5.1 and 1.8.5, `uv export`
to pylock.toml and requirements.txt), which lock, refusals in one line, and each format's staleness check."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers import PROJECTS
from lambda_kit.common import runtimes
from lambda_kit.common.errors import KitError, LockError, StepError, UsageError
from lambda_kit.lock import lockcheck, lockfile, lockformats
from lambda_kit.lock.lockfile import Lock

LOCKS = PROJECTS / "locks"
FILES = {
    "pipenv": "Pipfile.lock",
    "uv": "uv.lock",
    "poetry": "poetry.lock",
    "poetry-classic": "poetry.lock",
    "poetry-1.8": "poetry.lock",  # lock-version 2.0: no groups or markers per package, walked from pyproject.toml
    "pylock": "pylock.toml",
    "pylock-pip": "pylock.toml",  # pip 26.3's `pip lock`: one environment's files (CPython 3.11, x86_64 glibc)
    "requirements": "requirements.txt",
}
DEV = ["iniconfig", "packaging", "pluggy", "pygments", "pytest"]


def target(version: str = "3.11", arch: str = "x86_64") -> dict:
    return runtimes.target_environment(runtimes.lookup(version), arch)


def pins(model: dict) -> dict[str, str]:
    return {name: entry["version"] for name, entry in model["default"].items()}


def copy(tmp_path: Path, case: str) -> Path:
    shutil.copytree(LOCKS / case, tmp_path / case)
    return tmp_path / case / FILES[case]


@pytest.mark.parametrize("version,arch", [("3.11", "x86_64"), ("3.12", "arm64"), ("3.14", "x86_64")])
@pytest.mark.parametrize("case", [c for c in FILES if c not in ("pipenv", "pylock-pip")])
def test_every_format_locks_what_pipfile_lock_locks(case, version, arch):
    pipenv = lockfile.install_plan(lockformats.load(LOCKS / "pipenv" / "Pipfile.lock"), target(version, arch))
    model = lockformats.load(LOCKS / case / FILES[case], target(version, arch)).data
    plan = lockfile.install_plan(Lock(model), target(version, arch))
    assert {p.name: p.version for p in plan.index} == {p.name: p.version for p in pipenv.index}
    assert len(plan.index) == 11 and not plan.skipped and not plan.local and not plan.urls
    core = next(p for p in plan.index if p.name == "pydantic-core")
    wheel_for_target = {h for p in pipenv.index if p.name == "pydantic-core" for h in p.hashes}
    assert len(core.hashes) > 50 and set(core.hashes) & wheel_for_target
    assert [s["url"] for s in plan.sources] == ["https://pypi.org/simple"]
    assert "pytest" not in model["default"]


@pytest.mark.parametrize("case", ["uv", "poetry", "poetry-classic", "poetry-1.8"])
def test_dev_groups_stay_out_unless_asked(case):
    path = LOCKS / case / FILES[case]
    model = lockformats.read(lockformats.chosen(path), target()).data
    assert sorted(model["develop"]) == DEV and lockfile.develop_only(Lock(model)) == DEV
    with_dev = lockformats.read(lockformats.chosen(path), target(), lockformats.Selection(groups=("dev",))).data
    assert set(with_dev["default"]) == set(model["default"]) | set(DEV)
    with pytest.raises(UsageError, match="no such group or extra") as caught:
        lockformats.read(lockformats.chosen(path), target(), lockformats.Selection(groups=("docs",)))
    assert "dev" in caught.value.hint


@pytest.mark.parametrize("case", ["poetry", "poetry-1.8"])
def test_poetry_extras_come_from_pyproject(case):
    path = LOCKS / case / "poetry.lock"
    assert "orjson" not in lockformats.load(path, target()).entries
    fast = lockformats.load(path, target(), lockformats.Selection(extras=("fast",))).data
    assert fast["default"]["orjson"]["version"].startswith("==") and len(fast["default"]["orjson"]["hashes"]) > 5


def test_markers_are_the_targets(tmp_path):
    """pytest's own dependencies: exceptiongroup and tomli only below 3.11 (uv's edge markers)."""
    path = LOCKS / "uv" / "uv.lock"
    dev = lockformats.Selection(groups=("dev",))
    old = lockformats.read(lockformats.chosen(path), target("3.10"), dev).data
    new = lockformats.read(lockformats.chosen(path), target("3.12"), dev).data
    assert {"exceptiongroup", "tomli"} <= set(old["default"]) and not {"exceptiongroup", "tomli"} & set(new["default"])
    assert "colorama" not in old["default"]  # sys_platform == 'win32'


def test_the_projects_lock_is_found_and_two_are_refused(tmp_path):
    for case, name in FILES.items():
        folder = tmp_path / case
        shutil.copytree(LOCKS / case, folder)
        choice = lockformats.choose(None, None, folder)
        assert (choice.path.name, choice.found) == (name, True)
    both = tmp_path / "both"
    shutil.copytree(LOCKS / "uv", both)
    shutil.copy2(LOCKS / "poetry" / "poetry.lock", both)
    with pytest.raises(UsageError) as caught:
        lockformats.choose(None, None, both)
    assert str(caught.value) == f"more than one lock in {both} (uv.lock, poetry.lock)"
    assert caught.value.hint == "choose the one to build from: make LOCK=uv.lock"
    assert lockformats.choose(both / "poetry.lock", None, both).format == "poetry.lock"
    # An unhashed requirements.txt beside a lock is an export, not a second lock.
    (both / "poetry.lock").unlink()
    (both / "requirements.txt").write_text("requests>=2\n")
    assert lockformats.choose(None, None, both).path.name == "uv.lock"
    with pytest.raises(UsageError, match="not a lock file the kit reads"):
        lockformats.choose(both / "pyproject.toml", None, both)


def test_requirements_refused_naming_every_line_that_is_not_pinned_and_hashed(tmp_path):
    path = tmp_path / "requirements.txt"
    good = (LOCKS / "requirements" / "requirements.txt").read_text()
    path.write_text(good + "six==1.17.0\nattrs>=23 --hash=sha256:" + "a" * 64 + "\n-e ./libs/common\n")
    with pytest.raises(LockError) as caught:
        lockformats.load(path, target())
    lines = KitError(str(caught.value), hint=caught.value.hint).lines()
    assert len(lines) == 2 and "Traceback" not in lines[0]
    assert "six==1.17.0 (no --hash)" in lines[0] and "attrs>=23 (not pinned with ==)" in lines[0]
    assert "-e (an option the kit does not apply)" in lines[0]
    assert lines[1].startswith("hint: pin and hash every line")


def test_requirements_indexes_are_pips(tmp_path):
    path = tmp_path / "requirements.txt"
    body = (LOCKS / "requirements" / "requirements.txt").read_text()
    body = body.replace(
        "certifi==2026.10.19.post1 \\\n    --hash=sha256:", "certifi==2026.10.19.post1 \\\n    --hash sha256:"
    )
    assert "--hash sha256:" in body  # optparse's spelling, which pip takes too
    path.write_text(
        "--index-url https://mirror.example/simple\n--extra-index-url=https://private.example/simple\n" + body
    )
    model = lockformats.load(path, target()).data
    assert [s["url"] for s in model["_meta"]["sources"]] == [
        "https://mirror.example/simple",
        "https://private.example/simple",
    ]
    assert model["_meta"]["search-all-sources"] is True and len(model["default"]) == 11
    from lambda_kit.plan import network

    settings = network.for_lock(network.NetworkSettings(), Lock(model), tmp_path / "Pipfile", {})
    assert settings.search_all_sources and settings.lock_sources[0] == "https://mirror.example/simple"


def test_pylock_without_hashes_is_refused_and_pipenvs_empty_environments_read(tmp_path):
    path = copy(tmp_path, "pylock")
    text = path.read_text().replace("requires-python", "environments = []\nrequires-python", 1)
    path.write_text(text)
    assert len(lockformats.load(path, target()).entries) == 11
    for replacement, first in [
        ("hashes = {}", "pylock.toml has files without hashes (At least one hash must be provided in 'packages[0]"),
        (
            'hashes = { md5 = "' + "0" * 32 + '" }',
            "pylock.toml has packages without sha256 hashes (annotated-types==0.8.0, ",
        ),
    ]:
        path.write_text(re.sub(r'hashes = \{ sha256 = "[0-9a-f]+" \}', replacement, text))
        with pytest.raises(LockError) as caught:
            lockformats.load(path, target())
        assert str(caught.value).startswith(first), str(caught.value)
        assert caught.value.hint.startswith("lock again with hashes")


@pytest.mark.parametrize("case", ["poetry", "poetry-classic", "poetry-1.8"])
def test_poetry_content_hash_is_poetrys(tmp_path, case):
    path = copy(tmp_path, case)
    said = []
    lockcheck.start(lockformats.chosen(path)).verify({}, said.append)
    assert said == ["lambda-kit: poetry.lock verified against pyproject.toml (Poetry's content hash)"]
    pyproject = path.with_name("pyproject.toml")
    pyproject.write_text(
        pyproject.read_text().replace('"pyyaml"', '"pyyaml", "six"').replace('pyyaml = "*"', 'pyyaml = "*"\nsix = "*"')
    )
    with pytest.raises(StepError) as caught:
        lockcheck.start(lockformats.chosen(path)).verify({}, said.append)
    assert str(caught.value).startswith("poetry.lock is out of date with pyproject.toml (content-hash ")
    assert caught.value.hint == "run `poetry lock` and commit poetry.lock"


def test_uv_lock_check_is_uvs_own(tmp_path):
    path = copy(tmp_path, "uv")
    said = []
    lockcheck.start(lockformats.chosen(path)).verify({}, said.append)
    assert said == ["lambda-kit: uv.lock verified against pyproject.toml (uv lock --check)"]
    pyproject = path.with_name("pyproject.toml")
    pyproject.write_text(pyproject.read_text().replace('"pyyaml"]', '"pyyaml", "six"]'))
    with pytest.raises(StepError) as caught:
        lockcheck.start(lockformats.chosen(path)).verify({}, said.append)
    assert str(caught.value) == f"uv.lock is out of date with pyproject.toml ({path})"
    assert caught.value.hint == "run `uv lock` and commit uv.lock"


def test_malformed_locks_are_one_line(tmp_path):
    for name, text in [
        ("uv.lock", "version = 1\n[[package]]\nversion = '1'\n"),
        ("poetry.lock", "[[package]\n"),
        ("pylock.toml", 'lock-version = "9.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\n'),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n")
        (folder / name).write_text(text)
        with pytest.raises(LockError) as caught:
            lockformats.load(folder / name, target())
        assert "\n" not in str(caught.value) and name in str(caught.value), str(caught.value)


def test_uv_version_the_project_requires_and_a_missing_python_are_said_so(tmp_path):
    path = copy(tmp_path, "uv")
    pyproject = path.with_name("pyproject.toml")
    pyproject.write_text(pyproject.read_text().replace("[tool.uv]\n", '[tool.uv]\nrequired-version = "==0.11.*"\n'))
    with pytest.raises(StepError) as caught:
        lockcheck.start(lockformats.chosen(path)).verify({}, print)
    assert str(caught.value).startswith(
        "uv.lock cannot be checked: pyproject.toml requires uv ==0.11.*, the kit checks with uv 0."
    )
    assert (
        caught.value.hint.startswith("widen [tool.uv] required-version to take 0.")
        and '(e.g. ">=0.11")' in caught.value.hint
    )


def test_pip_locks_one_environments_files():
    """pip lock lists only the files for the machine it ran on: the same packages, one file each."""
    model = lockformats.load(LOCKS / "pylock-pip" / "pylock.toml", target("3.11")).data
    pipenv = lockformats.load(LOCKS / "pipenv" / "Pipfile.lock", target("3.11")).data
    assert pins(model) == pins(pipenv)
    assert all(
        len(e["hashes"]) == 1 and set(e["hashes"]) <= set(pipenv["default"][n]["hashes"])
        for n, e in model["default"].items()
    )


def test_uv_workspace_member_is_chosen_and_its_sibling_is_a_local_package():
    path = LOCKS / "uv-workspace" / "uv.lock"
    with pytest.raises(LockError) as caught:
        lockformats.load(path, target())
    assert "workspace members: common, orders" in str(caught.value) and "LOCK_PACKAGE" in caught.value.hint
    model = lockformats.load(path, target(), lockformats.Selection(package="orders", extras=("http",))).data
    assert model["default"]["common"] == {"path": "libs/common"}
    assert pins({"default": {n: e for n, e in model["default"].items() if n != "common"}}) == {
        "certifi": "==2026.10.19.post1",
        "idna": "==3.20",
        "pyyaml": "==6.0.4",
    }
    with pytest.raises(UsageError, match="LOCK_PACKAGE is not a package of uv.lock"):
        lockformats.load(path, target(), lockformats.Selection(package="billing"))


HOSTILE = {
    "uv.lock": [
        (
            'dependencies = [\n    { name = "pydantic" },',
            'dependencies = "pydantic"\nx = [\n    { name = "pydantic" },',
        ),
        ('source = { registry = "https://pypi.org/simple" }', "source = 7"),
        ("version = 1\n", 'version = "one"\n'),
        (
            '{ name = "pyyaml" },\n    { name = "requests" },\n]\n\n[package.dev',
            '{ name = "pyyaml" },\n    { name = "requests", marker = "python_version >>> \'3\'" },\n]\n\n[package.dev',
        ),
    ],
    "poetry.lock": [
        ('groups = ["main"]', 'groups = "main"'),
        ("files = [", "files = 3\nx = ["),
        ('[[package]]\nname = "annotated-types"', "[[package]]\nname = 5"),
    ],
    "pylock.toml": [
        ('name = "annotated-types"', 'name = ["annotated-types"]'),
        ('lock-version = "1.0"', "lock-version = 1"),
    ],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_locks_are_one_line_never_a_traceback(tmp_path, name):
    case = {"uv.lock": "uv", "poetry.lock": "poetry", "pylock.toml": "pylock"}[name]
    path = copy(tmp_path, case)
    original = path.read_text()
    for old, new in HOSTILE[name]:
        assert old in original, old
        path.write_text(original.replace(old, new, 1))
        with pytest.raises(LockError) as caught:
            lockformats.load(path, target())
        line = str(caught.value)
        assert "\n" not in line and name in line and caught.value.hint, (old, line)


def test_requirements_includes_cycle_and_nest_without_end(tmp_path):
    (tmp_path / "a.txt").write_text("-r b.txt\n")
    (tmp_path / "b.txt").write_text("-r a.txt\n--requirement=c.txt\n")
    (tmp_path / "c.txt").write_text((LOCKS / "requirements" / "requirements.txt").read_text())
    assert len(lockformats.load(tmp_path / "a.txt", target()).entries) == 11
    (tmp_path / "d.txt").write_text("-r missing.txt\n")
    with pytest.raises(LockError, match="cannot read missing.txt"):
        lockformats.load(tmp_path / "d.txt", target())
    (tmp_path / "e.txt").write_text("requests==2.34.2 --hash=sha256:" + "0" * 64 + ' ; "unbalanced\n')
    with pytest.raises(LockError) as caught:
        lockformats.load(tmp_path / "e.txt", target())
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "case,old,new",
    [
        (
            "pylock",
            'name = "pyyaml"\nversion = "6.0.4"\nindex = "https://pypi.org/simple"',
            'name = "pyyaml"\nversion = "6.0.4"\nindex = "https://private.example/simple"',
        ),
        (
            "uv",
            'name = "pyyaml"\nversion = "6.0.4"\nsource = { registry = "https://pypi.org/simple" }',
            'name = "pyyaml"\nversion = "6.0.4"\nsource = { registry = "https://private.example/simple" }',
        ),
    ],
)
def test_each_package_keeps_its_own_index(tmp_path, case, old, new):
    path = copy(tmp_path, case)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    model = lockformats.load(path, target()).data
    sources = {s["name"]: s["url"] for s in model["_meta"]["sources"]}
    assert list(sources.values()) == ["https://pypi.org/simple", "https://private.example/simple"]
    assert sources[model["default"]["pyyaml"]["index"]] == "https://private.example/simple"
    assert model["default"]["requests"]["index"] == "pypi"


def test_poetry_source_of_a_package_is_its_index(tmp_path):
    path = copy(tmp_path, "poetry")
    text = path.read_text()
    start = text.index('name = "pyyaml"')
    end = text.index("[[package]]", start)
    source = '[package.source]\ntype = "legacy"\nurl = "https://private.example/simple"\nreference = "private"\n\n'
    path.write_text(text[:end] + source + text[end:])
    model = lockformats.load(path, target()).data
    sources = {s["name"]: s["url"] for s in model["_meta"]["sources"]}
    assert sources[model["default"]["pyyaml"]["index"]] == "https://private.example/simple"
    assert "index" not in model["default"]["requests"] and model["_meta"]["sources"][0]["name"] == "pypi"


def test_pylock_files_elsewhere_than_an_index_are_named(tmp_path, monkeypatch):
    """pip lock records no `index`: PyPI's files are taken from PyPI; a CDN's are refused, naming the host."""
    path = copy(tmp_path, "pylock-pip")
    text = path.read_text().replace("https://files.pythonhosted.org/packages/", "https://cdn.example/wheels/", 2)
    path.write_text(text)
    monkeypatch.delenv("INDEX_URL", raising=False)
    monkeypatch.delenv("EXTRA_INDEX_URLS", raising=False)
    with pytest.raises(LockError) as caught:
        lockformats.load(path, target())
    assert str(caught.value) == (
        "pylock.toml names no index for files it locks elsewhere than PyPI "
        "(annotated-types from cdn.example, certifi from cdn.example)"
    )
    assert "INDEX_URL" in caught.value.hint
    monkeypatch.setenv("INDEX_URL", "https://mirror.example/simple")
    assert len(lockformats.load(path, target()).entries) == 11


@pytest.mark.parametrize("case", ["pipenv", "uv", "poetry", "pylock"])
def test_a_hashed_requirements_export_of_the_lock_is_not_a_second_lock(tmp_path, case):
    folder = tmp_path / case
    shutil.copytree(LOCKS / case, folder)
    export = (LOCKS / "requirements" / "requirements.txt").read_text()  # the same 11 pins (uv export wrote it)
    (folder / "requirements.txt").write_text(export)
    choice = lockformats.choose(None, None, folder)
    assert choice.path.name == FILES[case]
    assert choice.note == f"requirements.txt pins only what {FILES[case]} locks (an export of it), not a second lock"
    (folder / "requirements.txt").write_text(export.replace("idna==3.20", "idna==3.21"))  # pins something else
    with pytest.raises(UsageError, match="more than one lock"):
        lockformats.choose(None, None, folder)


def test_groups_and_extras_are_refused_for_locks_without_them(tmp_path):
    for case in ("pipenv", "requirements"):
        with pytest.raises(UsageError, match="LOCK_GROUPS, LOCK_EXTRAS and LOCK_PACKAGE") as caught:
            lockformats.read(
                lockformats.chosen(LOCKS / case / FILES[case]), target(), lockformats.Selection(groups=("dev",))
            )
        assert str(caught.value).endswith("(groups dev)")
