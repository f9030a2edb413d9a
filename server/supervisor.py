"""Background tasks that must run for the server to work (the batcher, housekeeping), restarted when they die.

A task that raises, returns, or is cancelled by anyone but the supervisor is logged, counted in
marionette_task_restarts_total{task} and started again after a short back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

from server import metrics

log = logging.getLogger(__name__)
BACKOFF_S = (0.05, 0.5, 2.0)  # successive restarts wait longer, so a crash loop does not spin


@dataclass
class _Supervised:
    name: str
    factory: Callable[[], Coroutine[object, object, None]]
    task: asyncio.Task | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self) -> None:
        self._children: dict[str, _Supervised] = {}
        self._watchers: list[asyncio.Task] = []

    def start(self, name: str, factory: Callable[[], Coroutine[object, object, None]]) -> None:
        child = _Supervised(name, factory)
        self._children[name] = child
        self._watchers.append(asyncio.create_task(self._watch(child), name=f"supervise-{name}"))

    def task(self, name: str) -> asyncio.Task | None:
        """The running task of `name` (tests kill it to check the restart)."""
        return self._children[name].task

    def status(self) -> dict[str, dict]:
        return {name: {"running": c.task is not None and not c.task.done(), "restarts": c.restarts}
                for name, c in self._children.items()}

    async def _watch(self, child: _Supervised) -> None:
        while True:
            child.task = asyncio.create_task(child.factory(), name=child.name)
            try:
                await child.task
                log.error("background task %s returned; restarting it", child.name)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    child.task.cancel()  # the supervisor itself is stopping
                    raise
                log.error("background task %s was cancelled; restarting it", child.name)
            except Exception:
                log.exception("background task %s died; restarting it", child.name)
            child.restarts += 1
            metrics.TASK_RESTARTS.labels(task=child.name).inc()
            await asyncio.sleep(BACKOFF_S[min(child.restarts, len(BACKOFF_S)) - 1])

    async def stop(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        for child in self._children.values():
            if child.task is not None and not child.task.done():
                child.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await child.task
