"""A live progress line on stderr: redrawn in place on a terminal, one plain line a second otherwise.

Redrawing with `\\r` suits a terminal; in a log file (CI, `2> run.log`) every redraw would stay as one more frame
of the same line, thousands of them over a ramp, so there the line is printed whole, at most once per
`interval_s`, and the last state is printed at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class ProgressLine:
    def __init__(self, label: str, quiet: bool = False, stream: TextIO | None = None, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._label, self._quiet, self._interval_s, self._clock = label, quiet, interval_s, clock
        self._stream = stream if stream is not None else sys.stderr
        self._terminal = self._stream.isatty()
        self._last_printed: float | None = None
        self._pending: str | None = None  # the newest text not printed yet (not on a terminal)
        self._shown = False

    def show(self, text: str) -> None:
        if self._quiet:
            return
        self._shown = True
        line = f"[{self._label}] {text}"
        if self._terminal:
            print(f"\r\033[K{line}", end="", file=self._stream, flush=True)
            return
        now = self._clock()
        if self._last_printed is not None and now - self._last_printed < self._interval_s:
            self._pending = line
            return
        self._print(line, now)

    def done(self) -> None:
        """End the line: a newline on a terminal; elsewhere the last state, if it was held back."""
        if self._quiet or not self._shown:
            return
        if self._terminal:
            print(file=self._stream, flush=True)
        elif self._pending is not None:
            self._print(self._pending, self._clock())
        self._shown = False

    def _print(self, line: str, now: float) -> None:
        print(line, file=self._stream, flush=True)
        self._last_printed, self._pending = now, None
