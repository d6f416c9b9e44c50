"""Warm environments per function version, handed out as leases.

A lease is an async context manager: whatever happens inside (success, function error, timeout, crash, the
caller going away), leaving it returns a healthy environment to the idle stack or disposes of a dead one.
The pool assigns every environment: a concurrency lease counted as provisioned is served from the version's
provisioned environments (lamina/invoke/provisioned.py), any other from the idle stacks or a new environment.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import AsyncContextManager, Callable, ContextManager, Protocol

from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey
from lamina.errors import TooManyRequestsException
from lamina.logs.format import stream_name
from lamina.runtimes.registry import RuntimeCatalog
from lamina.invoke.environment import ExecutionEnvironment
from lamina.invoke.states import EnvironmentState
from lamina.runtimes.launch import EnvironmentPlan
from lamina.sandbox.host import HostCapabilities
from lamina.sandbox.launcher import SandboxLauncher
from lamina.sandbox.host_slot import HostSlot
from lamina.sandbox.network import NetworkPool
from lamina.sandbox.teardown import TeardownThread

PoolKey = tuple[FunctionKey, str, str]  # (function, version, environment fingerprint)
#: How long an environment must have been idle before the idle-memory cap may stop it.
IDLE_CAP_GRACE_SECONDS = 5.0
log = logging.getLogger(__name__)


class ProvisionedEnvironments(Protocol):
    """The provisioned environments the pool hands out (lamina/invoke/provisioned.py's ProvisionedCapacity)."""

    def take(self, config: FunctionConfig) -> AsyncContextManager[ExecutionEnvironment] | None:
        """A lease on a free provisioned environment of this version, or None when none is free."""
        ...


def pool_key(config: FunctionConfig) -> PoolKey:
    return (config.key, config.version, config.environment_fingerprint)


class UidAllocator:
    """One uid per live environment, from the server's host slot (sandbox/host_slot.py), so no two environments
    on the host, of this server or another, share one."""

    def __init__(self, first: int, count: int) -> None:
        self._in_use: set[int] = set()
        self._next = itertools.cycle(range(first, first + count))

    def take(self) -> int:
        for uid in self._next:
            if uid not in self._in_use:
                self._in_use.add(uid)
                return uid
        raise RuntimeError("unreachable")

    def give_back(self, uid: int | None) -> None:
        if uid is not None:
            self._in_use.discard(uid)


class EnvironmentLease:
    """`async with pool.lease(config) as env:` — the environment is returned or disposed of on exit."""

    __slots__ = ("_pool", "_config", "environment")

    def __init__(self, pool: "EnvironmentPool", config: FunctionConfig) -> None:
        self._pool = pool
        self._config = config
        self.environment: ExecutionEnvironment | None = None

    async def __aenter__(self) -> ExecutionEnvironment:
        self.environment = await self._pool._acquire(self._config)
        return self.environment

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.environment is not None:
            self._pool._release(self.environment, failed=error is not None)


class EnvironmentPool:
    def __init__(
        self,
        catalog: RuntimeCatalog,
        caps: HostCapabilities,
        code_view_for: Callable[[FunctionConfig], ContextManager[Path]],
        launcher: SandboxLauncher,
        *,
        keep_alive_seconds: float,
        max_idle_memory_mb: int,
        max_environments: int,
        opt_view_for: Callable[[FunctionConfig], ContextManager[Path | None]] | None = None,
        slot: HostSlot | None = None,
        networks: NetworkPool | None = None,
        on_idle_output: Callable[[ExecutionEnvironment, bytes], None] | None = None,
    ) -> None:
        """`on_idle_output`: where what a runtime writes outside any invocation goes (its function's log)."""
        self._catalog = catalog
        self._launcher = launcher
        self._on_idle_output = on_idle_output
        #: The function's layers as one /opt directory, held for as long as an environment uses it.
        self._opt_view_for = opt_view_for
        #: What each environment holds until its sandbox is gone (its code and /opt views), from start to _reclaim.
        self._teardowns: dict[ExecutionEnvironment, contextlib.ExitStack] = {}
        self._teardown_thread = TeardownThread()
        self._reclaimed = asyncio.Event()
        self._caps = caps
        #: The function's code, as the directory to bind at /var/task, held for as long as an environment uses it.
        self._code_view_for = code_view_for
        self._keep_alive = keep_alive_seconds
        self._max_idle_memory_mb = max_idle_memory_mb
        self._max_environments = max_environments
        self._idle: dict[PoolKey, list[ExecutionEnvironment]] = {}
        self._all: set[ExecutionEnvironment] = set()
        self._retired: set[ExecutionEnvironment] = set()
        self._uids = UidAllocator(slot.first_uid, slot.uid_count) if slot is not None else None
        self._networks = networks
        self._provisioned: ProvisionedEnvironments | None = None

    def serve_provisioned_from(self, provisioned: ProvisionedEnvironments) -> None:
        self._provisioned = provisioned

    def lease(
        self, config: FunctionConfig, *, provisioned: bool = False
    ) -> EnvironmentLease | AsyncContextManager[ExecutionEnvironment]:
        """An environment for one invocation. `provisioned`: its concurrency lease counted against the version's
        provisioned environments, so one of them serves it (an on-demand one only if that one just died)."""
        if provisioned and self._provisioned is not None:
            taken = self._provisioned.take(config)
            if taken is not None:
                return taken
        return EnvironmentLease(self, config)

    async def _acquire(self, config: FunctionConfig) -> ExecutionEnvironment:
        stack = self._idle.get(pool_key(config))
        while stack:
            environment = stack.pop()
            if environment.usable:
                return environment
        if len(self._all) >= self._max_environments and not self._evict_one_idle():
            raise TooManyRequestsException("Rate Exceeded.", Reason="ConcurrentInvocationLimitExceeded")
        return await self._start(config)

    async def start_provisioned(self, config: FunctionConfig) -> ExecutionEnvironment:
        """A started environment that provisioned concurrency owns: never in the idle stacks, never evicted."""
        return await self._start(config, initialization_type="provisioned-concurrency")

    async def _start(self, config: FunctionConfig, initialization_type: str = "on-demand") -> ExecutionEnvironment:
        uid = self._uids.take() if self._uids is not None and self._caps.is_root and self._caps.setpriv_path else None
        with contextlib.ExitStack() as teardown:
            opt_dir = teardown.enter_context(self._opt_view_for(config)) if self._opt_view_for else None
            plan = EnvironmentPlan(
                env_id=uuid.uuid4().hex,
                config=config,
                code_dir=teardown.enter_context(self._code_view_for(config)),
                opt_dir=opt_dir,
                uid=uid,
                log_stream=stream_name(config.version, time.time()),
                initialization_type=initialization_type,
                sandboxed=self._launcher.sandboxed,
            )
            environment = ExecutionEnvironment(
                plan, self._catalog, self._launcher, on_stopped=self._forget, on_torn_down=self._reclaim,
                teardowns=self._teardown_thread, networks=self._networks, on_idle_output=self._on_idle_output,
            )
            self._teardowns[environment] = teardown.pop_all()
        self._all.add(environment)
        try:
            await environment.start()
        except BaseException:
            environment.stop()
            raise
        return environment

    def _release(self, environment: ExecutionEnvironment, *, failed: bool) -> None:
        if failed or environment in self._retired or not environment.usable:
            environment.stop()
            return
        environment.last_used = time.monotonic()
        self._idle.setdefault(pool_key(environment.config), []).append(environment)

    def _forget(self, environment: ExecutionEnvironment) -> None:
        """A stopped environment leaves the count at once; what its sandbox holds waits for _reclaim."""
        self._all.discard(environment)
        self._retired.discard(environment)
        stack = self._idle.get(pool_key(environment.config))
        if stack is not None and environment in stack:
            stack.remove(environment)
            if not stack:
                del self._idle[pool_key(environment.config)]

    def _reclaim(self, environment: ExecutionEnvironment) -> None:
        """Its sandbox's teardown finished: the uid and the views it held may go (not before: a dying process still
        runs as that uid, and an overlay cannot be unmounted from under it)."""
        teardown = self._teardowns.pop(environment, None)
        try:
            if teardown is not None:
                teardown.close()
        except Exception:  # noqa: BLE001 - the uid must still come back
            log.exception("environment %s: releasing its views failed", environment.env_id)
        finally:
            if self._uids is not None:
                self._uids.give_back(environment.uid)
            self._reclaimed.set()

    def retire(self, key: FunctionKey, version: str | None = None) -> None:
        """After an update or delete of one version (None: every version of the function): idle environments stop
        now, busy ones when their invocation ends."""
        for environment in list(self._all):
            config = environment.config
            if config.key == key and version in (None, config.version):
                if environment.state in (EnvironmentState.BUSY, EnvironmentState.STARTING):
                    # Its invocation finishes on the code it started with; then it goes.
                    self._retired.add(environment)
                else:
                    environment.stop()

    def _idle_environments(self) -> list[ExecutionEnvironment]:
        return sorted((e for stack in self._idle.values() for e in stack), key=lambda e: e.last_used)

    def _evict_one_idle(self) -> bool:
        idle = self._idle_environments()
        if not idle:
            return False
        idle[0].stop()
        return True

    def evict(self, *, low_host_memory: bool = False) -> None:
        """Stop environments idle past the keep-alive, and the oldest idle ones under memory pressure."""
        now = time.monotonic()
        idle = self._idle_environments()
        for environment in idle:
            if now - environment.last_used > self._keep_alive:
                environment.stop()
        idle = [e for e in idle if e.state is not EnvironmentState.STOPPED]
        if low_host_memory and idle:
            idle.pop(0).stop()
        # Under load environments are idle for microseconds between invokes: only settled ones count toward the cap.
        settled = [e for e in idle if now - e.last_used > IDLE_CAP_GRACE_SECONDS and e.state is EnvironmentState.IDLE]
        total = sum(e.config.memory_size for e in settled)
        while settled and total > self._max_idle_memory_mb:
            oldest = settled.pop(0)
            total -= oldest.config.memory_size
            oldest.stop()

    async def stop_all(self, timeout: float) -> bool:
        """Stop every environment and wait until their teardowns finished, at most `timeout` seconds, so that a clean
        stop leaves nothing behind; False if some did not finish (remove_stale_sandboxes takes those)."""
        for environment in list(self._all):
            environment.stop()
        deadline = time.monotonic() + timeout
        while self._teardowns:
            self._reclaimed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._reclaimed.wait(), deadline - time.monotonic())
            if self._teardowns and time.monotonic() >= deadline:
                log.warning("%d environment teardowns unfinished after %.0f s", len(self._teardowns), timeout)
                return False
        return True

    @property
    def environment_count(self) -> int:
        return len(self._all)


async def run_eviction(pool: EnvironmentPool, interval: float, low_memory: Callable[[], bool]) -> None:
    while True:
        await asyncio.sleep(interval)
        pool.evict(low_host_memory=low_memory())
