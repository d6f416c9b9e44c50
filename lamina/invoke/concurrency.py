"""In-flight concurrency: who may start an invocation now, counted as leases.

AWS's model, per region: an account limit; functions with reserved concurrency own that many slots, the rest
share the unreserved pool. Provisioned concurrency is carved out of the function's reservation (or out of the
unreserved pool when it has none) and is served by pre-initialised environments first; invocations beyond it
spill over to on-demand slots. Everything here is in memory and runs on the event loop: the invoke path never
waits or touches the database.

A lease holds its slot from the moment `acquire` returns it until it is released, which `async with lease:`
guarantees on every path (success, function error, timeout, crash, cancellation). Over a limit `acquire` raises
AWS's 429 TooManyRequestsException, which asynchronous workers catch to retry later.
"""
from __future__ import annotations

import enum
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from lamina.model.function import FunctionConfig
from lamina.errors import TooManyRequestsException

if TYPE_CHECKING:
    from lamina.invoke.environment import ExecutionEnvironment

FunctionKey = tuple[str, str]  # (region, name)
#: AWS keeps this many executions unreserved (less when the whole limit is smaller).
MIN_UNRESERVED = 100
#: Seconds a throttled caller is told to wait (the `Retry-After` header).
RETRY_AFTER_SECONDS = 1


class ThrottleReason(str, enum.Enum):
    RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
    ACCOUNT = "ConcurrentInvocationLimitExceeded"


def throttled(reason: ThrottleReason) -> TooManyRequestsException:
    """AWS's 429 body and header for a synchronous invoke over a concurrency limit."""
    error = TooManyRequestsException("Rate Exceeded.", Reason=reason.value)
    error.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return error


class EnvironmentLeaseLike(Protocol):
    """An environment lease taken ahead of use: entering it hands out the environment, leaving returns it."""

    def abandon(self) -> None:
        """Return the environment if the lease was never entered (no-op otherwise)."""
        ...

    async def __aenter__(self) -> "ExecutionEnvironment": ...

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...


class ProvisionedSource(Protocol):
    """Where pre-initialised environments come from (lamina/invoke/provisioned.py)."""

    def take(self, config: FunctionConfig) -> EnvironmentLeaseLike | None:
        """A lease on a free provisioned environment of this version, or None when all are busy or absent."""
        ...


class ConcurrencyLease:
    """One in-flight invocation's slot; `provisioned` is set when a provisioned environment serves it."""

    __slots__ = ("_limits", "_key", "_unreserved", "provisioned", "_released")

    def __init__(
        self,
        limits: "ConcurrencyLimits",
        key: FunctionKey,
        *,
        unreserved: bool,
        provisioned: EnvironmentLeaseLike | None,
    ) -> None:
        self._limits = limits
        self._key = key
        self._unreserved = unreserved
        self.provisioned = provisioned
        self._released = False

    def release(self) -> None:
        """Give the slot back; safe to call more than once."""
        if self._released:
            return
        self._released = True
        if self.provisioned is not None:
            self.provisioned.abandon()
        else:
            self._limits._release_on_demand(self._key, unreserved=self._unreserved)

    async def __aenter__(self) -> "ConcurrencyLease":
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


class ConcurrencyLimits:
    """The account limit, per-function reservations and provisioned totals, and the in-flight counts."""

    def __init__(self, account_limit: int, provisioned: ProvisionedSource | None = None) -> None:
        self.account_limit = account_limit
        self.min_unreserved = min(MIN_UNRESERVED, account_limit)
        self._provisioned = provisioned
        self._reserved: dict[FunctionKey, int] = {}
        self._provisioned_total: dict[FunctionKey, int] = {}
        self._unreserved_capacity: dict[str, int] = {}
        self._in_flight: dict[FunctionKey, int] = {}
        self._unreserved_in_flight: dict[str, int] = {}

    # -- settings (pushed by the control plane) ----------------------------------------------------------------------
    def set_reserved(self, region: str, name: str, reserved: int | None) -> None:
        if reserved is None:
            self._reserved.pop((region, name), None)
        else:
            self._reserved[(region, name)] = reserved
        self._unreserved_capacity.pop(region, None)

    def set_provisioned_total(self, region: str, name: str, total: int) -> None:
        if total:
            self._provisioned_total[(region, name)] = total
        else:
            self._provisioned_total.pop((region, name), None)
        self._unreserved_capacity.pop(region, None)

    def reserved(self, region: str, name: str) -> int | None:
        return self._reserved.get((region, name))

    def provisioned_total(self, region: str, name: str) -> int:
        return self._provisioned_total.get((region, name), 0)

    def unreserved(self, region: str) -> int:
        """UnreservedConcurrentExecutions: the limit less reservations and provisioned capacity taken from the pool."""
        capacity = self._unreserved_capacity.get(region)
        if capacity is None:
            taken = sum(value for (r, _), value in self._reserved.items() if r == region)
            taken += sum(
                value
                for key, value in self._provisioned_total.items()
                if key[0] == region and key not in self._reserved
            )
            capacity = self._unreserved_capacity[region] = self.account_limit - taken
        return capacity

    # -- leases ------------------------------------------------------------------------------------------------------
    def acquire(self, config: FunctionConfig) -> ConcurrencyLease:
        """A slot for one invocation, or AWS's 429 with the reason."""
        lease = self._try(config)
        if isinstance(lease, ThrottleReason):
            raise throttled(lease)
        return lease

    def throttle_reason(self, config: FunctionConfig) -> ThrottleReason | None:
        """Why an invocation would be throttled right now, without taking a slot."""
        key = (config.region, config.name)
        reserved = self._reserved.get(key)
        if reserved is not None:
            if self._in_flight.get(key, 0) >= reserved - self._provisioned_total.get(key, 0):
                return ThrottleReason.RESERVED
            return None
        if self._unreserved_in_flight.get(config.region, 0) >= self.unreserved(config.region):
            return ThrottleReason.ACCOUNT
        return None

    def _try(self, config: FunctionConfig) -> ConcurrencyLease | ThrottleReason:
        key = (config.region, config.name)
        if self._provisioned is not None and key in self._provisioned_total:
            environment = self._provisioned.take(config)
            if environment is not None:
                return ConcurrencyLease(self, key, unreserved=False, provisioned=environment)
        reason = self.throttle_reason(config)
        if reason is not None:
            return reason
        unreserved = key not in self._reserved
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        if unreserved:
            self._unreserved_in_flight[config.region] = self._unreserved_in_flight.get(config.region, 0) + 1
        return ConcurrencyLease(self, key, unreserved=unreserved, provisioned=None)

    def _release_on_demand(self, key: FunctionKey, *, unreserved: bool) -> None:
        _decrement(self._in_flight, key)
        if unreserved:
            _decrement(self._unreserved_in_flight, key[0])


def _decrement(counts: dict, key: object) -> None:
    remaining = counts.get(key, 0) - 1
    if remaining > 0:
        counts[key] = remaining
    else:
        counts.pop(key, None)
