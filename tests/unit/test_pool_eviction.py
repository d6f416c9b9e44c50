"""Which idle environments the pool stops: past the keep-alive, and oldest-first under memory pressure."""
from __future__ import annotations

import contextlib

import time
from dataclasses import dataclass
from pathlib import Path

from lamina.invoke.pool import EnvironmentPool
from lamina.invoke.states import EnvironmentState
from lamina.model.keys import FunctionKey


@dataclass
class _Config:
    name: str
    memory_size: int
    region: str = "us-east-1"
    version: str = "$LATEST"
    environment_fingerprint: str = "f1"
    account: str = "000000000000"

    @property
    def key(self) -> FunctionKey:
        return FunctionKey(self.account, self.region, self.name)


class _Environment:
    """Stands in for ExecutionEnvironment: only what the pool's bookkeeping reads."""

    def __init__(self, pool: EnvironmentPool, name: str, memory: int) -> None:
        self.config = _Config(name, memory)
        self.state = EnvironmentState.IDLE
        self.uid = None
        self._pool = pool

    @property
    def usable(self) -> bool:
        return self.state is EnvironmentState.IDLE

    def stop(self) -> None:
        self.state = EnvironmentState.STOPPED
        self._pool._forget(self)  # type: ignore[arg-type]


def _pool(max_idle_memory_mb: int, keep_alive: float = 600) -> EnvironmentPool:
    return EnvironmentPool(
        None, None, lambda config: contextlib.nullcontext(Path("/nonexistent")), None,  # type: ignore[arg-type]
        keep_alive_seconds=keep_alive, max_idle_memory_mb=max_idle_memory_mb, max_environments=10,
    )


def _park(pool: EnvironmentPool, name: str, memory: int, idle_for: float) -> _Environment:
    environment = _Environment(pool, name, memory)
    pool._all.add(environment)  # type: ignore[arg-type]
    pool._release(environment, failed=False)  # type: ignore[arg-type]
    environment.last_used = time.monotonic() - idle_for  # type: ignore[attr-defined]
    return environment


def test_keep_alive_expiry_stops_only_expired_environments() -> None:
    pool = _pool(max_idle_memory_mb=10_000, keep_alive=60)
    stale = _park(pool, "a", 128, idle_for=120)
    fresh = _park(pool, "b", 128, idle_for=5)
    pool.evict()
    assert stale.state is EnvironmentState.STOPPED
    assert fresh.state is EnvironmentState.IDLE
    assert pool.environment_count == 1


def test_idle_memory_cap_stops_the_least_recently_used_first() -> None:
    pool = _pool(max_idle_memory_mb=512)
    oldest = _park(pool, "a", 256, idle_for=30)
    middle = _park(pool, "b", 256, idle_for=20)
    newest = _park(pool, "c", 256, idle_for=10)
    pool.evict()
    assert [e.state for e in (oldest, middle, newest)] == [
        EnvironmentState.STOPPED, EnvironmentState.IDLE, EnvironmentState.IDLE,
    ]


def test_host_memory_pressure_stops_one_idle_environment_per_round() -> None:
    pool = _pool(max_idle_memory_mb=10_000)
    first = _park(pool, "a", 128, idle_for=30)
    second = _park(pool, "b", 128, idle_for=10)
    pool.evict(low_host_memory=True)
    assert first.state is EnvironmentState.STOPPED and second.state is EnvironmentState.IDLE
    pool.evict(low_host_memory=False)
    assert second.state is EnvironmentState.IDLE


def test_failed_or_retired_environments_are_never_reused() -> None:
    pool = _pool(max_idle_memory_mb=10_000)
    environment = _Environment(pool, "a", 128)
    pool._all.add(environment)  # type: ignore[arg-type]
    pool._release(environment, failed=True)  # type: ignore[arg-type]
    assert environment.state is EnvironmentState.STOPPED
    assert pool.environment_count == 0


def test_environments_between_invokes_are_not_counted_toward_the_idle_cap() -> None:
    pool = _pool(max_idle_memory_mb=1024)
    busy_moments_ago = [_park(pool, f"f{i}", 1769, idle_for=0.001) for i in range(8)]
    pool.evict()
    assert all(environment.state is EnvironmentState.IDLE for environment in busy_moments_ago)
