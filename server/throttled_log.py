"""Repeated identical tracebacks are logged once, then counted: a failing batch at 30 fps must not flood the log."""

from __future__ import annotations

import logging
import time
import traceback


class ThrottledLog:
    """Logs the full traceback of an error the first time its (type, place) is seen, then at most once per
    `interval_s` with the number of repeats suppressed in between."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (last logged, suppressed since)

    def exception(self, message: str, error: BaseException) -> None:
        frames = traceback.extract_tb(error.__traceback__)
        place = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        key = (type(error).__name__, place)
        now = time.monotonic()
        last, suppressed = self._seen.get(key, (None, 0))
        if last is not None and now - last < self._interval_s:
            self._seen[key] = (last, suppressed + 1)
            return
        self._seen[key] = (now, 0)
        repeats = f" ({suppressed} more like it since the last report)" if suppressed else ""
        self._logger.error("%s%s", message, repeats, exc_info=error)
