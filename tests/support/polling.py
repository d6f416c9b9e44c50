"""Waiting for something in a test: poll a check until it holds, and fail plainly at a deadline.

Use these instead of a fixed `sleep` before an assertion: a poll returns as soon as the thing happened (fast on a
quiet machine) and still waits long enough on a loaded one. A fixed sleep stays right only where the point is that
time passes (a timeout to expire, a gap between timestamps, a check that something does *not* happen).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Call `check` until it returns something truthy, and return that; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout} s (last: {result!r})")
        time.sleep(interval)


async def async_wait_until(
    check: Callable[[], T | Awaitable[T]], timeout: float = 5.0, interval: float = 0.005, what: str = ""
) -> T:
    """`wait_until` for a test running on an event loop: the loop keeps running while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout} s (last: {result!r})")
        await asyncio.sleep(interval)
