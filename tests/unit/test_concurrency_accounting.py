"""Concurrency accounting and provisioned allocations, without processes."""
from __future__ import annotations

import asyncio

import pytest

from lamina.model.function import FunctionConfig
from lamina.model.keys import Scope
from lamina.errors import TooManyRequestsException
from lamina.invoke.concurrency import ConcurrencyLimits, ThrottleReason
from lamina.invoke.provisioned import ProvisionedCapacity, ProvisionedStatus
from lamina.invoke.states import EnvironmentState
from tests.support.polling import async_wait_until


ACCOUNT = "000000000000"
US = Scope(ACCOUNT, "us-east-1")


def config(name: str = "fn", version: str = "$LATEST", region: str = "us-east-1", account: str = ACCOUNT) -> FunctionConfig:
    return FunctionConfig(
        region=region, account=account, name=name, role="r", runtime="python3.11", handler="app.handler",
        code_sha256_hex="c0de", code_sha256_b64="", code_size=1, version=version,
    )


class FakeEnvironment:
    def __init__(self, config: FunctionConfig, initializes: bool) -> None:
        self.config = config
        self.state = EnvironmentState.INITIALIZING
        self.initializes = initializes
        self.last_used = 0.0

    @property
    def usable(self) -> bool:
        return self.state in (EnvironmentState.IDLE, EnvironmentState.INITIALIZING)

    def finish_init(self) -> None:
        self.state = EnvironmentState.IDLE if self.initializes else EnvironmentState.STOPPED

    def stop(self) -> None:
        self.state = EnvironmentState.STOPPED


class FakePool:
    def __init__(self, initializes: bool = True) -> None:
        self.started: list[FakeEnvironment] = []
        self.initializes = initializes

    async def start_provisioned(self, config: FunctionConfig) -> FakeEnvironment:
        environment = FakeEnvironment(config, self.initializes)
        self.started.append(environment)
        asyncio.get_running_loop().call_soon(environment.finish_init)
        return environment


def test_reserved_limit_counts_leases_and_releases_them_once():
    limits = ConcurrencyLimits(1000)
    limits.set_reserved(US.function("fn"), 2)
    first, second = limits.acquire(config()), limits.acquire(config())
    assert limits.throttle_reason(config()) is ThrottleReason.RESERVED
    with pytest.raises(TooManyRequestsException) as caught:
        limits.acquire(config())
    assert caught.value.body() == {"Type": "User", "message": "Rate Exceeded.", "Reason": ThrottleReason.RESERVED.value}
    assert caught.value.headers == {"Retry-After": "1"}
    first.release()
    first.release()  # a second release gives nothing back twice
    third = limits.acquire(config())
    with pytest.raises(TooManyRequestsException):
        limits.acquire(config())
    second.release()
    third.release()


def test_unreserved_pool_is_the_limit_less_reservations_and_provisioned_outside_them():
    limits = ConcurrencyLimits(10)
    assert limits.min_unreserved == 10
    limits.set_reserved(US.function("a"), 3)
    limits.set_provisioned_total(US.function("a"), 2)  # inside a's reservation: not taken twice
    limits.set_provisioned_total(US.function("b"), 4)
    assert limits.unreserved(US) == 3
    assert limits.unreserved(Scope(ACCOUNT, "eu-west-1")) == 10
    assert limits.unreserved(Scope("111122223333", "us-east-1")) == 10  # another account's pool is its own
    leases = [limits.acquire(config("c")) for _ in range(3)]
    assert limits.throttle_reason(config("d")) is ThrottleReason.ACCOUNT
    assert limits.throttle_reason(config("d", region="eu-west-1")) is None
    assert limits.throttle_reason(config("d", account="111122223333")) is None
    assert limits.throttle_reason(config("a", account="111122223333")) is None  # a reservation is per account
    # a's on-demand share is its reservation less its provisioned concurrency
    only = limits.acquire(config("a"))
    assert limits.throttle_reason(config("a")) is ThrottleReason.RESERVED
    for lease in (*leases, only):
        lease.release()
    assert limits.throttle_reason(config("d")) is None


def test_async_lease_releases_on_exceptions():
    limits = ConcurrencyLimits(1000)
    limits.set_reserved(US.function("fn"), 1)

    async def fail_inside() -> None:
        async with limits.acquire(config()):
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        asyncio.run(fail_inside())
    assert limits.throttle_reason(config()) is None


def test_provisioned_allocation_becomes_ready_and_serves_first_then_spills_over():
    async def scenario() -> None:
        pool = FakePool()
        capacity = ProvisionedCapacity(pool)  # type: ignore[arg-type]
        limits = ConcurrencyLimits(1000, capacity)
        version = config(version="1")
        capacity.apply((US.function("fn"), "1"), version, 2)
        limits.set_provisioned_total(US.function("fn"), 2)
        allocation = capacity.allocation((US.function("fn"), "1"))
        assert allocation is not None and allocation.status is ProvisionedStatus.IN_PROGRESS
        await async_wait_until(lambda: allocation.status is ProvisionedStatus.READY)
        assert allocation.allocated == 2

        leases = [limits.acquire(version) for _ in range(3)]
        assert [lease.provisioned for lease in leases] == [True, True, False]  # counted: 2 ready, then on demand
        assert limits.acquire(config()).provisioned is False  # $LATEST never uses them
        assert capacity.ready(version) == 2 and capacity.ready(config(version="2")) == 0
        # the pool's side: each provisioned lease gets one of the allocation's environments
        async with capacity.take(version) as environment:  # type: ignore[union-attr]
            assert environment in pool.started
            second = capacity.take(version)
            assert second is not None and capacity.take(version) is None
        leases[0].release()
        assert limits.acquire(version).provisioned is True  # its provisioned slot is free again
        assert limits.acquire(version).provisioned is False
        capacity.remove((US.function("fn"), "1"))

    asyncio.run(scenario())


def test_a_failed_environment_is_replaced_and_an_init_failure_fails_the_allocation():
    async def scenario() -> None:
        pool = FakePool()
        capacity = ProvisionedCapacity(pool)  # type: ignore[arg-type]
        capacity.apply((US.function("fn"), "1"), config(version="1"), 1)
        allocation = capacity.allocation((US.function("fn"), "1"))
        assert allocation is not None
        await async_wait_until(lambda: allocation.status is ProvisionedStatus.READY)
        lease = capacity.take(config(version="1"))
        assert lease is not None
        async with lease:
            pass
        with pytest.raises(RuntimeError):
            lease = capacity.take(config(version="1"))
            assert lease is not None
            async with lease:
                raise RuntimeError("the invocation timed out")
        assert pool.started[0].state is EnvironmentState.STOPPED
        await async_wait_until(lambda: len(pool.started) == 2 and allocation.allocated == 1, what="a replacement")
        assert capacity.take(config(version="1")) is not None

        broken = FakePool(initializes=False)
        failing = ProvisionedCapacity(broken)  # type: ignore[arg-type]
        failing.apply((US.function("fn"), "2"), config(version="2"), 1)
        allocation = failing.allocation((US.function("fn"), "2"))
        assert allocation is not None
        await async_wait_until(lambda: allocation.status is not ProvisionedStatus.IN_PROGRESS)
        assert (allocation.status, allocation.status_reason) == (ProvisionedStatus.FAILED, "FUNCTION_ERROR_INIT_FAILURE")

    asyncio.run(scenario())
