"""What every audit rule module shares: severities, findings, the collector, and the context a
check reads (the zip, opened with bounded reading, and the target).

A rule module (auditcontent, auditnative, ...) holds a `RULES` table, id -> (severity, hint), and
check functions `check_x(ctx, found)`; `audit.CHECKS` runs them in order and `audit.RULES` joins
the tables (the report lists findings in that order).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lambda_kit.common import runtimes
from lambda_kit.lock.lockfile import Lock
from lambda_kit.zips.zipreader import EntryError, ZipReader, escape

ERROR, WARNING = "error", "warning"
MAX_LISTED = 10  # entries named per finding; the count says how many more


@dataclass
class Finding:
    id: str
    severity: str
    message: str
    entries: list[str] = field(default_factory=list)
    hint: str = ""

    def line(self) -> str:
        shown = ", ".join(escape(e) for e in self.entries[:MAX_LISTED])
        more = f" (+{len(self.entries) - MAX_LISTED} more)" if len(self.entries) > MAX_LISTED else ""
        names = f": {shown}{more}" if shown else ""
        return f"{self.severity:<7} {self.id:<17} {escape(self.message)}{names}"


class Collector:
    def __init__(self, rules: dict[str, tuple[str, str]]) -> None:
        self.rules = rules
        self.by_rule: dict[str, list[str]] = {}
        self.messages: dict[str, str] = {}

    def add(self, rule: str, message: str, entry: str | None = None) -> None:
        self.messages.setdefault(rule, message)
        entries = self.by_rule.setdefault(rule, [])
        if entry is not None:
            entries.append(entry)

    def findings(self) -> list[Finding]:
        out = []
        for rule, (severity, hint) in self.rules.items():  # a stable order: the table's
            if rule in self.by_rule:
                out.append(Finding(rule, severity, self.messages[rule], self.by_rule[rule], hint))
        return out


@dataclass
class Context:
    """What the checks read. `damaged`: entries whose content is not what their header says
    (zip-corrupt reports them; no other check reads them)."""

    zf: ZipReader
    path: Path
    runtime: runtimes.Runtime
    arch: str
    handler: str | None = None
    lock: Lock | None = None
    layers: list[Path] = field(default_factory=list)
    native_cache: Path | None = None
    inflate_all: bool = True  # measure every entry by inflating it (False: a zip this kit just wrote)
    damaged: set[str] = field(default_factory=set)
    warn: Callable[[str], None] | None = None  # a note about the kit's own state (a cache ignored)
    cache: object = None  # auditnative.NativeCache: native facts and bytecode verdicts, saved at the end
    loaded: set[str] | None = None  # entries an extension module loads (nativeneeds); None: judge all as loaded
    infos: list = field(init=False)
    files: list = field(init=False)

    def __post_init__(self) -> None:
        self.infos = self.zf.infos
        self.files = [i for i in self.infos if not i.is_dir()]

    def read(self, info, cap: int, found: Collector, whole: bool = True) -> bytes | None:
        """An entry's content (see ZipReader.read); None, and a zip-corrupt finding, when it is not
        what its header says."""
        out = io.BytesIO()
        return out.getvalue() if self.copy_to(info, out, cap, found, whole) else None

    def copy_to(self, info, out, cap: int, found: Collector, whole: bool = True) -> bool:
        """ZipReader.copy_to; False, and a zip-corrupt finding, for a damaged or lying entry."""
        if info.filename in self.damaged:
            return False
        try:
            for data in self.zf.chunks(info, cap, whole):
                out.write(data)
            return True
        except EntryError as exc:
            self.mark_damaged(exc, found)
            return False

    def mark_damaged(self, exc: EntryError, found: Collector) -> None:
        self.damaged.add(exc.name)
        found.add(
            "zip-corrupt",
            "entries whose content does not match their header (size or CRC)",
            f"{exc.name} ({exc.reason})",
        )


def encrypted(info) -> bool:
    return bool(info.flag_bits & 0x1)  # unreadable without a password; zip-encrypted reports it
