"""Supervised periodic loops: one failure is logged with its traceback, and the loop starts again after a pause.

Every `while True` background task of the server goes through `supervised` (server.py's upkeep, the pool's
eviction, provisioned-concurrency upkeep, the async dispatcher's timer), so a bug in one round neither kills the
task silently nor spins: it shows in the log and the next round runs RESTART_PAUSE_SECONDS later.
Cancellation (a clean stop) ends the loop.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

RESTART_PAUSE_SECONDS = 1.0
_log = logging.getLogger("lamina.supervisor")


async def supervised(
    name: str, run: Callable[[], Awaitable[Any]], *, pause: float = RESTART_PAUSE_SECONDS
) -> None:
    """Run `run()` (a loop coroutine) for ever: when it raises, log it and start it again `pause` seconds later;
    when it returns, start it again at once."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the point: log any failure and keep the loop alive
            _log.exception("%s failed; restarting in %.1f s", name, pause)
            await asyncio.sleep(pause)


async def every(name: str, seconds: float, work: Callable[[], Awaitable[Any]]) -> None:
    """Await `work()` every `seconds`, supervised: a failed round is logged and the next one runs on time."""

    async def rounds() -> None:
        while True:
            await asyncio.sleep(seconds)
            await work()

    await supervised(name, rounds, pause=0.0)
