"""Provisioned concurrency: environments initialised ahead of time for one published version.

Each provisioned-concurrency config (on a version or an alias) becomes an Allocation bound to the version it
resolves to. The allocation starts its environments in the background (IN_PROGRESS), reports READY once all
of them finished their init phase, or FAILED when an init fails. Invocations of that version take a free
allocated environment first: the concurrency limits count them (`ready`), the pool hands them out (`take`,
a ProvisionedLease); when none is free invocations spill over to on-demand environments.
An environment that dies (timeout, crash) is replaced at once, or by the periodic `upkeep` when it died idle.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from types import TracebackType

from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey
from lamina.invoke.pool import EnvironmentPool
from lamina.invoke.environment import INIT_TIMEOUT_SECONDS, ExecutionEnvironment
from lamina.invoke.states import EnvironmentState

TargetKey = tuple[FunctionKey, str]  # (function, qualifier the config was put on)
VersionKey = tuple[FunctionKey, str]  # (function, version)
INIT_POLL_SECONDS = 0.02
_log = logging.getLogger("lamina.provisioned")


class ProvisionedStatus(str, enum.Enum):
    IN_PROGRESS = "IN_PROGRESS"
    READY = "READY"
    FAILED = "FAILED"


INIT_FAILURE_REASON = "FUNCTION_ERROR_INIT_FAILURE"


async def _initialised(environment: ExecutionEnvironment) -> bool:
    """Wait for the runtime's first `next` (init done); False when it stopped or overran AWS's init limit."""
    deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
    while environment.state is EnvironmentState.INITIALIZING and time.monotonic() < deadline:
        await asyncio.sleep(INIT_POLL_SECONDS)
    return environment.state is EnvironmentState.IDLE


class Allocation:
    """The environments one config keeps initialised for one version."""

    def __init__(self, pool: EnvironmentPool, config: FunctionConfig, requested: int) -> None:
        self._pool = pool
        self.config = config
        self.requested = requested
        self.status = ProvisionedStatus.IN_PROGRESS
        self.status_reason: str | None = None
        self._free: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def allocated(self) -> int:
        return len(self._free) + len(self._busy)

    def resize(self, requested: int) -> None:
        """A new requested count: start the missing environments or stop the surplus idle ones."""
        self.requested = requested
        self.status, self.status_reason = ProvisionedStatus.IN_PROGRESS, None
        while self._free and self.allocated > requested:
            self._free.pop().stop()
        self.fill()

    def fill(self) -> None:
        """Start environments until the requested count is allocated or being started."""
        if self._closed or self.status is ProvisionedStatus.FAILED:
            return
        self._free = [environment for environment in self._free if environment.usable]
        missing = self.requested - self.allocated - self._starting
        for _ in range(missing):
            self._starting += 1
            task = asyncio.create_task(self._start_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._settle()

    async def _start_one(self) -> None:
        environment: ExecutionEnvironment | None = None
        try:
            environment = await self._pool.start_provisioned(self.config)
            ready = await _initialised(environment)
        except asyncio.CancelledError:
            if environment is not None:
                environment.stop()
            raise
        except Exception:  # noqa: BLE001 - a failed start is an init failure of this allocation
            _log.exception("provisioned environment for %s failed to start", self.config.qualified_arn)
            ready = False
        finally:
            self._starting -= 1
        if self._closed or not ready or self.allocated >= self.requested:
            if environment is not None:
                environment.stop()
            if not ready and not self._closed:
                self.status, self.status_reason = ProvisionedStatus.FAILED, INIT_FAILURE_REASON
            return
        assert environment is not None
        self._free.append(environment)
        self._settle()

    def _settle(self) -> None:
        if self.status is ProvisionedStatus.IN_PROGRESS and self.allocated >= self.requested:
            self.status = ProvisionedStatus.READY

    def take(self) -> "ProvisionedLease | None":
        while self._free:
            environment = self._free.pop()
            if environment.usable:
                self._busy.add(environment)
                return ProvisionedLease(self, environment)
        return None

    def give_back(self, environment: ExecutionEnvironment, *, failed: bool) -> None:
        self._busy.discard(environment)
        if failed or self._closed or not environment.usable or self.allocated >= self.requested:
            environment.stop()
            self.fill()
            return
        environment.last_used = time.monotonic()
        self._free.append(environment)

    def close(self) -> None:
        """Stop every environment now, except busy ones, which stop when their invocation returns them."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for environment in self._free:
            environment.stop()
        self._free.clear()


class LeaseState(enum.Enum):
    TAKEN = "taken"  # handed out by the pool, not entered yet
    ENTERED = "entered"  # an invocation runs in it
    RETURNED = "returned"  # back with its allocation: never returned twice


class ProvisionedLease:
    """`async with lease as environment:` — the environment goes back to its allocation (or is replaced)."""

    __slots__ = ("_allocation", "_environment", "_state")

    def __init__(self, allocation: Allocation, environment: ExecutionEnvironment) -> None:
        self._allocation = allocation
        self._environment = environment
        self._state = LeaseState.TAKEN

    async def __aenter__(self) -> ExecutionEnvironment:
        self._state = LeaseState.ENTERED
        return self._environment

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._state is LeaseState.ENTERED:
            self._state = LeaseState.RETURNED
            self._allocation.give_back(self._environment, failed=error is not None)


class ProvisionedCapacity:
    """Every allocation, by the config that asked for it and by the version it serves."""

    def __init__(self, pool: EnvironmentPool) -> None:
        self._pool = pool
        self._by_target: dict[TargetKey, Allocation] = {}
        self._by_version: dict[VersionKey, Allocation] = {}

    def apply(self, target: TargetKey, config: FunctionConfig, requested: int, *, retry_failed: bool = False) -> None:
        """Make `target` keep `requested` environments of `config`'s version (re-targeting if it moved).

        A FAILED allocation stays failed unless `retry_failed` (a new Put of the config) asks to try again.
        """
        allocation = self._by_target.get(target)
        if allocation is not None and _same_version(allocation.config, config):
            failed = allocation.status is ProvisionedStatus.FAILED
            if allocation.requested != requested or (failed and retry_failed):
                allocation.resize(requested)
            return
        self.remove(target)
        allocation = Allocation(self._pool, config, requested)
        self._by_target[target] = allocation
        self._by_version[_version_key(config)] = allocation
        allocation.fill()

    def remove(self, target: TargetKey) -> None:
        allocation = self._by_target.pop(target, None)
        if allocation is None:
            return
        key = _version_key(allocation.config)
        if self._by_version.get(key) is allocation:
            del self._by_version[key]
        allocation.close()

    def targets(self) -> list[TargetKey]:
        return list(self._by_target)

    def allocation(self, target: TargetKey) -> Allocation | None:
        return self._by_target.get(target)

    def ready(self, config: FunctionConfig) -> int:
        """Initialised environments of this version, busy or free (what provisioned leases are counted against)."""
        allocation = self._serving(config)
        return allocation.allocated if allocation is not None else 0

    def take(self, config: FunctionConfig) -> ProvisionedLease | None:
        allocation = self._serving(config)
        return allocation.take() if allocation is not None else None

    def _serving(self, config: FunctionConfig) -> Allocation | None:
        allocation = self._by_version.get(_version_key(config))
        if allocation is None or not _same_version(allocation.config, config):
            return None
        return allocation

    def upkeep(self) -> None:
        """Replace environments that died while idle."""
        for allocation in list(self._by_target.values()):
            allocation.fill()

    def close(self) -> None:
        for target in list(self._by_target):
            self.remove(target)


def _version_key(config: FunctionConfig) -> VersionKey:
    return (config.key, config.version)


def _same_version(a: FunctionConfig, b: FunctionConfig) -> bool:
    return a.version == b.version and a.code_sha256_hex == b.code_sha256_hex
