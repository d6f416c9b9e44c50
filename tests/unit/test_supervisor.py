"""Supervised periodic loops: a failure is logged with its traceback and the loop starts again after a pause."""
from __future__ import annotations

import asyncio
import logging

import pytest

from lamina.supervisor import every, supervised
from tests.support.polling import async_wait_until


def test_a_failing_loop_is_logged_and_restarted_after_the_pause(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[float] = []

    async def loop_body() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) < 3:
            raise ValueError(f"round {len(runs)} broke")
        await asyncio.sleep(3600)

    async def scenario() -> None:
        task = asyncio.create_task(supervised("test loop", loop_body, pause=0.05))
        await async_wait_until(lambda: len(runs) == 3, timeout=2, interval=0.01, what="three runs")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="lamina.supervisor"):
        asyncio.run(scenario())
    assert len(runs) == 3
    assert runs[1] - runs[0] >= 0.05 and runs[2] - runs[1] >= 0.05, "restarts wait for the pause"
    failures = [record for record in caplog.records if "test loop failed" in record.getMessage()]
    assert len(failures) == 2 and all(record.exc_info and record.exc_info[0] is ValueError for record in failures)


def test_cancellation_ends_a_supervised_loop_at_once() -> None:
    async def scenario() -> None:
        task = asyncio.create_task(supervised("sleeper", lambda: asyncio.sleep(3600)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_every_keeps_its_rounds_going_after_a_failed_one(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    async def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise OSError("disk hiccup")

    async def scenario() -> None:
        task = asyncio.create_task(every("upkeep", 0.01, work))
        await async_wait_until(lambda: len(rounds) >= 4, timeout=3, interval=0.01, what="four rounds")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="lamina.supervisor"):
        asyncio.run(scenario())
    assert len(rounds) >= 4
    assert any("upkeep failed" in record.getMessage() for record in caplog.records)


def test_each_kind_of_blocking_work_has_its_own_named_bounded_pool() -> None:
    import threading

    from lamina.executors import CONTROL_THREADS, S3_THREADS, Executors

    executors = Executors()
    try:
        names = {
            kind: getattr(executors, kind).submit(lambda: threading.current_thread().name).result()
            for kind in ("control", "s3", "destinations", "upkeep")
        }
        assert names["control"].startswith("lamina-control") and names["s3"].startswith("lamina-s3")
        assert names["destinations"].startswith("lamina-destinations") and names["upkeep"].startswith("lamina-upkeep")
        assert CONTROL_THREADS > S3_THREADS, "control threads waiting on S3 never take them all"
    finally:
        executors.close()
