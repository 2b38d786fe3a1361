"""Locks from any pipenv, their shape: each malformed shape of an older pipenv's Pipfile.lock is
one error naming the file and the key."""

from __future__ import annotations

import json

import pytest
from helpers import MALFORMED, OLDER_PIPENV_LOCK, changed_lock
from lambda_kit.lock import lockfile


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_each_malformed_shape_names_the_file_and_key(tmp_path, case):
    change, expected = MALFORMED[case]
    path = tmp_path / "Pipfile.lock"
    path.write_text(json.dumps(changed_lock(change)))
    with pytest.raises(lockfile.LockError) as caught:
        lockfile.load_pipfile_lock(path)
    assert str(caught.value) == f"malformed lock: {expected}" + str(caught.value).split(expected, 1)[1]
    assert str(caught.value).endswith(f"({path})") and "\n" not in str(caught.value)


def test_the_good_lock_has_no_shape_problem():
    assert lockfile.shape_problem(OLDER_PIPENV_LOCK) is None
