"""In-flight concurrency: who may start an invocation now, counted as leases.

AWS's model, per account and region: an account limit; functions with reserved concurrency own that many slots, the rest
share the unreserved pool. Provisioned concurrency is carved out of the function's reservation (or out of the
unreserved pool when it has none) and is used first: a lease counts against the version's initialised provisioned
environments while one is not already in use, and invocations beyond them spill over to on-demand slots. This
module only counts; which environment serves a lease is the pool's choice (`EnvironmentPool.lease`, told whether
the lease is a provisioned one). Everything here is in memory and runs on the event loop: the invoke path never
waits or touches the database.

A lease holds its slot from the moment `acquire` returns it until it is released, which `async with lease:`
guarantees on every path (success, function error, timeout, crash, cancellation). Over a limit `acquire` raises
AWS's 429 TooManyRequestsException, which asynchronous workers catch to retry later.
"""
from __future__ import annotations

import enum
from types import TracebackType
from typing import Protocol

from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey, Scope
from lamina.errors import TooManyRequestsException

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


class ProvisionedCounts(Protocol):
    """How many provisioned environments a version has (lamina/invoke/provisioned.py)."""

    def ready(self, config: FunctionConfig) -> int:
        """Initialised provisioned environments of this version, busy or free."""
        ...


VersionKey = tuple[FunctionKey, str]


class ConcurrencyLease:
    """One in-flight invocation's slot. `provisioned`: it counts against the version's provisioned environments (the
    pool then serves it from one of them), else against the function's or the account's on-demand concurrency."""

    __slots__ = ("_limits", "_key", "_version", "_unreserved", "provisioned", "_released")

    def __init__(
        self,
        limits: "ConcurrencyLimits",
        config: FunctionConfig,
        *,
        unreserved: bool,
        provisioned: bool,
    ) -> None:
        self._limits = limits
        self._key = config.key
        self._version = config.version
        self._unreserved = unreserved
        self.provisioned = provisioned
        self._released = False

    def release(self) -> None:
        """Give the slot back; safe to call more than once."""
        if self._released:
            return
        self._released = True
        if self.provisioned:
            _decrement(self._limits._provisioned_in_flight, (self._key, self._version))
        else:
            self._limits._release_on_demand(self._key, unreserved=self._unreserved)

    async def __aenter__(self) -> "ConcurrencyLease":
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


class ConcurrencyLimits:
    """The account limit (the same for every account, per region), per-function reservations and provisioned totals,
    and the in-flight counts."""

    def __init__(self, account_limit: int, provisioned: ProvisionedCounts | None = None) -> None:
        self.account_limit = account_limit
        self.min_unreserved = min(MIN_UNRESERVED, account_limit)
        self._provisioned = provisioned
        self._reserved: dict[FunctionKey, int] = {}
        self._provisioned_total: dict[FunctionKey, int] = {}
        self._unreserved_capacity: dict[Scope, int] = {}
        self._in_flight: dict[FunctionKey, int] = {}
        self._unreserved_in_flight: dict[Scope, int] = {}
        self._provisioned_in_flight: dict[VersionKey, int] = {}

    # -- settings (pushed by the control plane) ----------------------------------------------------------------------
    def set_reserved(self, key: FunctionKey, reserved: int | None) -> None:
        if reserved is None:
            self._reserved.pop(key, None)
        else:
            self._reserved[key] = reserved
        self._unreserved_capacity.pop(key.scope, None)

    def set_provisioned_total(self, key: FunctionKey, total: int) -> None:
        if total:
            self._provisioned_total[key] = total
        else:
            self._provisioned_total.pop(key, None)
        self._unreserved_capacity.pop(key.scope, None)

    def reserved(self, key: FunctionKey) -> int | None:
        return self._reserved.get(key)

    def provisioned_total(self, key: FunctionKey) -> int:
        return self._provisioned_total.get(key, 0)

    def unreserved(self, scope: Scope) -> int:
        """UnreservedConcurrentExecutions of an account in a region: the limit less reservations and provisioned
        capacity taken from the pool."""
        capacity = self._unreserved_capacity.get(scope)
        if capacity is None:
            taken = sum(value for key, value in self._reserved.items() if key.scope == scope)
            taken += sum(
                value
                for key, value in self._provisioned_total.items()
                if key.scope == scope and key not in self._reserved
            )
            capacity = self._unreserved_capacity[scope] = self.account_limit - taken
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
        key = config.key
        reserved = self._reserved.get(key)
        if reserved is not None:
            if self._in_flight.get(key, 0) >= reserved - self._provisioned_total.get(key, 0):
                return ThrottleReason.RESERVED
            return None
        scope = key.scope
        if self._unreserved_in_flight.get(scope, 0) >= self.unreserved(scope):
            return ThrottleReason.ACCOUNT
        return None

    def _try(self, config: FunctionConfig) -> ConcurrencyLease | ThrottleReason:
        key = config.key
        if self._provisioned is not None and key in self._provisioned_total:
            version = (key, config.version)
            in_use = self._provisioned_in_flight.get(version, 0)
            if in_use < self._provisioned.ready(config):
                self._provisioned_in_flight[version] = in_use + 1
                return ConcurrencyLease(self, config, unreserved=False, provisioned=True)
        reason = self.throttle_reason(config)
        if reason is not None:
            return reason
        unreserved = key not in self._reserved
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        if unreserved:
            scope = key.scope
            self._unreserved_in_flight[scope] = self._unreserved_in_flight.get(scope, 0) + 1
        return ConcurrencyLease(self, config, unreserved=unreserved, provisioned=False)

    def _release_on_demand(self, key: FunctionKey, *, unreserved: bool) -> None:
        _decrement(self._in_flight, key)
        if unreserved:
            _decrement(self._unreserved_in_flight, key.scope)


def _decrement(counts: dict, key: object) -> None:
    remaining = counts.get(key, 0) - 1
    if remaining > 0:
        counts[key] = remaining
    else:
        counts.pop(key, None)
