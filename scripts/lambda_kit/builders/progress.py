"""Progress of the dependency build, read from its log while it grows, so a long build is never
silent: a live line on a terminal, a plain line at a steady pace without one (a Jenkins log).

Both builders write the kit's fetch lines (`lambda-kit: fetched NAME (N bytes)`, `kept NAME`) and,
for what pip downloads, pip's (`Downloading ...`, `Saved ...`, `File was already downloaded ...`,
`Successfully installed ...`) to the log; a Docker build adds the build steps' `lambda-kit:`
lines and its own step lines (`Step 5/11 :` on the legacy builder, `#9 [5/11]` on BuildKit, whose
lines carry a `#N 1.23 ` prefix). Lines are searched, not anchored, so both prefixes work.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from lambda_kit.common import reporter

EVERY_SECONDS = 10.0  # plain lines without a terminal; LAMBDA_KIT_PROGRESS_SECONDS overrides
LIVE_SECONDS = 0.5  # the live line's refresh on a terminal

KIT = re.escape(reporter.PREFIX)  # the kit's lines in a log
IMAGE_STEP = re.compile(r"Step (\d+)/(\d+) :|^#\d+ \[(?:[\w.-]+ )?(\d+)/(\d+)\]")
DOWNLOADING = re.compile(r"Downloading \S+ \(([\d.,]+) ([kMG]?B)\)")
KIT_LINE = re.compile(KIT + r"(.+)$")
CHOSEN_BEFORE = re.compile(KIT + r"(\d+) files? chosen for this target before")  # buildsteps
WHEELS_UNPACKED = re.compile(KIT + r"(\d+) wheels? unpacked")  # buildsteps: the kit's own installer
FETCHED = re.compile(KIT + r"fetched \S+ \((\d+) bytes\)")  # wheelfetch: a file downloaded
KEPT = re.compile(KIT + r"kept \S+ \(")  # wheelfetch: a file already in the wheelhouse
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


class BuildProgress:
    """Counts what the log says; `line()` is the progress sentence. `feed` is the whole parser,
    so tests give it lines directly; as a context manager it follows a log file in a thread."""

    def __init__(
        self,
        log_path: Path | None = None,
        total: int | None = None,
        out: TextIO | None = None,
        every: float | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log_path = log_path
        self.total = total
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.every = every if every is not None else _every_from_environment(self.live)
        self.clock = clock
        self.started = clock()
        self.image_step = ""
        self.fetching = False  # set by pip's first line about a package
        self.downloaded = self.reused = self.installed = 0
        self.bytes = 0.0
        self.doing = "setting up the build tools"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._partial = b""
        self._offset = 0

    def feed(self, line: str) -> None:
        step = IMAGE_STEP.search(line)
        if step:
            done, of = (step.group(1), step.group(2)) if step.group(1) else (step.group(3), step.group(4))
            self.image_step = f"{done}/{of}"
        kit = KIT_LINE.search(line)
        if kit:
            self.doing = kit.group(1).strip()[:70]
            unpacked = WHEELS_UNPACKED.search(line)
            self.installed += int(unpacked.group(1)) if unpacked else 0
            known = CHOSEN_BEFORE.search(line)
            if known:
                self.fetching, self.reused = True, self.reused + int(known.group(1))
            fetched = FETCHED.search(line)
            if fetched:
                self.fetching, self.downloaded = True, self.downloaded + 1
                self.bytes += int(fetched.group(1))
            elif KEPT.search(line):
                self.fetching, self.reused = True, self.reused + 1
            return
        size = DOWNLOADING.search(line)
        if size:
            self.fetching, self.doing = True, "downloading"
            self.bytes += float(size.group(1).replace(",", "")) * UNITS[size.group(2)]
        if "Saved " in line:
            self.fetching, self.downloaded = True, self.downloaded + 1
        elif "File was already downloaded" in line:
            self.fetching, self.reused = True, self.reused + 1
        elif "Installing collected packages" in line:
            self.fetching, self.doing = True, "installing"
        elif "Successfully installed " in line:
            self.installed += len(line.split("Successfully installed ", 1)[1].split())

    def line(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        parts = [f"{self.clock() - self.started:.0f}s"]
        if self.image_step:
            parts.append(f"image step {self.image_step}")
        if self.fetching:
            fetched = self.downloaded + self.reused
            parts.append(
                f"packages: {fetched}{of} fetched ({self.downloaded} downloaded, {self.bytes / 1e6:.1f} MB; "
                f"{self.reused} reused), {self.installed}{of} installed"
            )
        parts.append(f"now: {self.doing}")
        return reporter.line("... ") + "; ".join(parts)

    # ---- following the log ----

    def __enter__(self) -> BuildProgress:
        if self.log_path is not None and self.every > 0:
            self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._thread = threading.Thread(target=self._follow, name="lambda-kit-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.live:
            self.out.write("\r\x1b[K")
            self.out.flush()

    def _follow(self) -> None:
        last_print = self.clock()
        while not self._stop.wait(LIVE_SECONDS if self.live else min(self.every, 1.0)):
            self._read_new()
            now = self.clock()
            if self.live:
                self.out.write("\r\x1b[K" + self.line()[:160])
                self.out.flush()
            elif now - last_print >= self.every:
                last_print = now
                self.out.write(self.line() + "\n")
                self.out.flush()

    def _read_new(self) -> None:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._offset)
                data = log.read(1 << 20)  # a bounded bite per tick; the rest comes next tick
        except OSError:
            return
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > 1 << 16:  # a line without end (a progress bar): do not hoard it
            self._partial = b""
        for raw in lines:
            self.feed(raw.decode("utf-8", "replace").rstrip("\r"))


def _every_from_environment(live: bool) -> float:
    raw = os.environ.get("LAMBDA_KIT_PROGRESS_SECONDS", "")
    try:
        return float(raw) if raw else (LIVE_SECONDS if live else EVERY_SECONDS)
    except ValueError:
        return EVERY_SECONDS
