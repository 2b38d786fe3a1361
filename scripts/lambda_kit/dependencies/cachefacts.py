"""The audit's facts that travel with a shared deps.zip (sharedcache): each entry's shape checked,
then merged into this agent's audit caches, so a fresh agent's audit parses no native file again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def _is_fact(value: object) -> bool:
    """What audit._inspect_native returns: ["elf", machine, glibc major, minor] or ["other", what]."""
    if not isinstance(value, list) or not value:
        return False
    if value[0] == "elf":
        return len(value) == 4 and isinstance(value[1], (str, int)) and all(type(v) is int for v in value[2:])
    return value[0] == "other" and len(value) == 2 and isinstance(value[1], str)


def is_native_entry(key: str, value: object) -> bool:
    """An entry of the audit's native cache: a fact by file, or (COMPILE=1) a bytecode verdict:
    [] or [rule, message]."""
    if key.startswith("bytecode|"):
        return isinstance(value, list) and len(value) in (0, 2) and all(isinstance(v, str) for v in value)
    return _is_fact(value)


def is_links_entry(key: str, value: object) -> bool:
    """An entry of the native-needed rule's cache: [None] (not an ELF file) or
    [[needed], [rpath], [runpath], [soname, class, machine, init]], all strings (an older kit's
    entries lack the last list: taken, and read again when used)."""
    if not isinstance(value, list) or len(value) != 1:
        return False
    links = value[0]
    return links is None or (
        isinstance(links, list)
        and len(links) in (3, 4)
        and all(isinstance(part, list) and all(isinstance(v, str) for v in part) for part in links)
        and (len(links) == 3 or len(links[3]) == 4)
    )


def merge_native_facts(source: Path, target: Path, shape: Callable[[str, object], bool] = is_native_entry) -> bool:
    """Add the entries in `source` to the audit's cache file `target` (temporary file, then
    rename). False when `source` is not such a table (each entry checked by `shape`)."""
    from lambda_kit.audit import auditnative

    try:
        new = auditnative.load_facts(source)  # the audit's own format, its digest checked
    except (OSError, ValueError):
        return False
    try:
        old = auditnative.load_facts(target) if target.is_file() else {}
    except (OSError, ValueError):
        old = {}  # a local cache that does not verify is rebuilt, as the audit would
    if not all(isinstance(k, str) and shape(k, v) for k, v in new.items()):
        return False
    auditnative.save_facts(target, {**old, **new})
    return True
