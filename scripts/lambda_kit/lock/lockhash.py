"""Run by the helper's interpreter (its environment has the pinned pipenv) as a script: prints, as JSON,
what pipenv itself computes for a Pipfile, so the kit never reimplements the Pipfile hash.

    current   the hash `pipenv verify` compares today (names normalised, lower case, `_` to `-`)
    older     the hash older pipenv wrote, from plette (vendored by pipenv; what it used before)
    packages  the names in [packages]

    python lockhash.py path/to/Pipfile

Standard library plus the pinned pipenv only; on a Pipfile pipenv cannot read, prints
{"error": "..."} and exits 1.
"""

from __future__ import annotations

import json
import os
import sys


def pipfile_facts(path: str) -> dict:
    from pipenv.vendor import plette

    with open(path, encoding="utf-8") as f:
        parsed = plette.Pipfile.load(f)
    older = parsed.get_hash().value
    os.environ["PIPENV_PIPFILE"] = os.path.abspath(path)
    from pipenv.project import Project

    current = Project().pipfile.calculate_hash()
    return {"current": current, "older": older, "packages": sorted(parsed._data.get("packages", {}))}


def main() -> int:
    try:
        import pipenv  # noqa: F401  the helper's environment, not the Pipfile, is at fault without it
    except ImportError as exc:
        print(json.dumps({"no_pipenv": f"{type(exc).__name__}: {exc}"}))
        return 1
    try:
        facts = pipfile_facts(sys.argv[1])
    except Exception as exc:  # noqa: BLE001  any parse failure of the user's Pipfile becomes one line on the host
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}))
        return 1
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
