"""Which file was chosen for each locked package, per target, kept beside the wheelhouse.

Looking a package up again costs an index page (thousands of links for a package with a long
history). The answer cannot change while the lock's hashes for the package do not: the files an
index holds for a release are never replaced, and the lock's hashes bound which of them pip (or the
kit's chooser, `wheelfetch`, which takes what pip would) may take. So after each download the kit
notes, for the target (pip's target options) and each `name==version` with its set of hashes, the
file taken; the next build takes that file from the wheelhouse without asking, and only what
changed is looked up.

What is noted is not trusted further than the wheelhouse: an entry is used only when its file is in
the wheelhouse, is a wheel whose tags the target accepts, and (checked by the installer before it
opens it) has one of the lock's hashes. Anything else is skipped and looked up again. Standard library
plus `packaging`: runs in the build image and on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from lambda_kit.common import contract
from lambda_kit.steps.target import Target

FILE = contract.WHEEL_CHOICES  # in the wheelhouse; staged into the build context with it


def package_key(name: str, version: str, hashes) -> str:
    pins = hashlib.sha256(" ".join(sorted(hashes)).encode()).hexdigest()[:16]
    return f"{canonicalize_name(name)}{version} {pins}"


class Choices:
    def __init__(self, wheelhouse: Path, target: Target | None) -> None:
        self.path = wheelhouse / FILE
        self.wheelhouse = wheelhouse
        self.target = target.key() if target else ""
        self.accepted = set(target.tags) if target else set()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self.all = data if isinstance(data, dict) else {}
        mine = self.all.get(self.target)
        self.mine = mine if isinstance(mine, dict) else {}

    def known(self, name: str, version: str, hashes) -> Path | None:
        """The wheel pip took for this package before, when it is still fit to use."""
        file = self.mine.get(package_key(name, version, hashes))
        if not isinstance(file, str) or os.path.basename(file) != file or not self.accepted:
            return None
        try:
            tags = parse_wheel_filename(file)[3]
        except InvalidWheelFilename:
            return None
        path = self.wheelhouse / file
        if not tags & self.accepted or not path.is_file():
            return None
        return path

    def save(self, chosen: dict[str, tuple[str, str, tuple, Path]]) -> None:
        """Note pip's (and the notes') choices: {canonical name: (name, version, hashes, file)}."""
        if not self.accepted:
            return
        fresh = {package_key(n, v, h): f.name for n, v, h, f in chosen.values() if f.name.endswith(".whl")}
        self.all[self.target] = fresh
        self.wheelhouse.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".choices.", dir=self.wheelhouse)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.all, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
