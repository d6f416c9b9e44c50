"""Concurrency settings: reserved concurrency per function and provisioned-concurrency configs per qualifier.

The rules and AWS's messages live here; the settings are persisted in the concurrency store and pushed into
the in-memory limits (lamina/invoke/concurrency.py) and provisioned capacity (lamina/invoke/provisioned.py)
that the invoke path reads. The rules and the in-memory state run on the event loop (the limits and the pool are
the loop's); the store's writes run on the settings writer, one thread, so they land in the order they were made
(an operation awaits its own; `reconcile`, which cannot wait, queues its and goes on). An asyncio lock makes each
operation's check, write and apply one step, so two operations cannot both spend the same unreserved concurrency.

Configs follow the function: `reconcile` drops what names a deleted function, version or alias and re-targets
a config whose alias moved. It runs after every function change, before every read of the settings, and once a
second (aliases move without telling anyone).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable

from lamina.supervisor import supervised
from lamina.model.arns import LATEST, FunctionRef, is_version
from lamina.control.functions import FunctionService
from lamina.control.validation import LAMBDA
from lamina.model.function import FunctionConfig, aws_timestamp
from lamina.model.keys import FunctionKey, Scope
from lamina.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    ResourceNotFoundException,
    validation_error,
)
from lamina.invoke.concurrency import ConcurrencyLimits
from lamina.invoke.provisioned import ProvisionedCapacity, ProvisionedStatus, TargetKey
from lamina.store.concurrency import ConcurrencyStore, ProvisionedConfigRecord

_log = logging.getLogger(__name__)

UNQUALIFIED_ONLY = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. "
    "Please specify either a function name or an unqualified function ARN."
)
NOT_A_PUBLISHED_RESOURCE = "The function resource provided must be an alias or a published version."
UNPUBLISHED_VERSION = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NO_PROVISIONED_CONFIG = "No Provisioned Concurrency Config found for this function"
ALIAS_ON_PROVISIONED_VERSION = "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
VERSION_UNDER_PROVISIONED_ALIAS = "Version is pointed by a Provisioned Concurrency alias"
OVER_RESERVED = "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
UPKEEP_INTERVAL_SECONDS = 1.0


class LimitExceeded(InvalidParameterValueException):
    """AWS answers its account-limit refusals without `Type` in the body (recorded)."""

    include_type = False


@dataclass(frozen=True)
class ProvisionedConfigView:
    """One provisioned-concurrency config with its live allocation state, in AWS's wire form."""

    record: ProvisionedConfigRecord
    arn: str
    allocated: int
    status: ProvisionedStatus
    status_reason: str | None

    def to_aws(self, *, with_arn: bool = False) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if with_arn:
            document["FunctionArn"] = self.arn
        document.update(
            RequestedProvisionedConcurrentExecutions=self.record.requested,
            AvailableProvisionedConcurrentExecutions=self.allocated,
            AllocatedProvisionedConcurrentExecutions=self.allocated,
            Status=self.status.value,
        )
        if self.status_reason is not None:
            document["StatusReason"] = self.status_reason
        document["LastModified"] = self.record.last_modified
        return document


class ConcurrencySettings:
    def __init__(
        self,
        store: ConcurrencyStore,
        functions: FunctionService,
        limits: ConcurrencyLimits,
        capacity: ProvisionedCapacity,
        writer: Executor,
    ) -> None:
        """`writer`: a one-thread executor for the store's writes."""
        self._store = store
        self._functions = functions
        self._limits = limits
        self._capacity = capacity
        self._writer = writer
        self._changing = asyncio.Lock()
        self._provisioned: dict[TargetKey, ProvisionedConfigRecord] = {}
        self._upkeep: asyncio.Task[None] | None = None

    def load(self) -> None:
        for key, reserved in self._store.reserved().items():
            if self._functions.exists(key):
                self._limits.set_reserved(key, reserved)
            else:  # deleted just before a crash
                self._store.set_reserved(key, None)
        for record in self._store.provisioned():
            self._provisioned[(record.key, record.qualifier)] = record
        for key in {key for key, _ in self._provisioned}:
            self._update_total(key)

    def start(self) -> None:
        """Begin provisioning the stored configs and keep them in line (needs the running event loop)."""
        self._reconcile_all()
        self._upkeep = asyncio.create_task(supervised("provisioned-concurrency upkeep", self._run_upkeep))

    async def close(self) -> None:
        """Stop the upkeep and every provisioned environment, once the queued writes are done."""
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        await self._persist(lambda: None)
        self._capacity.close()

    def _persist(self, write: Callable[..., None], *args: Any) -> asyncio.Future[None]:
        """Run a store write on the settings writer; a failure is logged even if nobody awaits it."""
        future = asyncio.get_running_loop().run_in_executor(self._writer, write, *args)
        future.add_done_callback(_log_failure)
        return future

    async def _run_upkeep(self) -> None:
        while True:
            await asyncio.sleep(UPKEEP_INTERVAL_SECONDS)
            self._reconcile_all()
            self._capacity.upkeep()

    def _reconcile_all(self) -> None:
        for key in {key for key, _ in self._provisioned}:
            self.reconcile(key)

    # -- reserved concurrency --------------------------------------------------------------------------------------
    async def put_reserved(self, scope: Scope, ref: FunctionRef, body: dict[str, Any]) -> int:
        LAMBDA.check("PutFunctionConcurrency", body)
        async with self._changing:
            return await self._put_reserved(scope, ref, body["ReservedConcurrentExecutions"])

    async def _put_reserved(self, scope: Scope, ref: FunctionRef, reserved: int) -> int:
        key = self._unqualified(scope, ref, missing_qualifier=LATEST)
        current = self._limits.reserved(key)
        provisioned = self._limits.provisioned_total(key)
        taken_now = current if current is not None else provisioned
        if self._limits.unreserved(scope) + taken_now - reserved < self._limits.min_unreserved:
            raise LimitExceeded(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
                f"below its minimum value of [{self._limits.min_unreserved}]."
            )
        if provisioned > reserved:
            raise LimitExceeded(
                f" ReservedConcurrentExecutions  {reserved} should not be lower than function's total provisioned "
                f"concurrency [{provisioned}]."
            )
        await self._persist(self._store.set_reserved, key, reserved)
        self._limits.set_reserved(key, reserved)
        return reserved

    def get_reserved(self, scope: Scope, ref: FunctionRef) -> int | None:
        return self._limits.reserved(self._unqualified(scope, ref))

    async def delete_reserved(self, scope: Scope, ref: FunctionRef) -> None:
        async with self._changing:
            key = self._unqualified(scope, ref)
            await self._persist(self._store.set_reserved, key, None)
            self._limits.set_reserved(key, None)

    def reserved(self, key: FunctionKey) -> int | None:
        return self._limits.reserved(key)

    def account_limit(self, scope: Scope) -> dict[str, int]:
        return {
            "ConcurrentExecutions": self._limits.account_limit,
            "UnreservedConcurrentExecutions": self._limits.unreserved(scope),
        }

    def _unqualified(self, scope: Scope, ref: FunctionRef, missing_qualifier: str | None = None) -> FunctionKey:
        if ref.qualifier is not None:
            raise InvalidParameterValueException(UNQUALIFIED_ONLY)
        try:
            return self._functions.resolve(scope, ref, None).key
        except ResourceNotFoundException as error:
            if missing_qualifier is None:
                raise
            raise ResourceNotFoundException(
                f"Function not found: {scope.function(ref.name).arn(missing_qualifier)}"
            ) from error

    # -- provisioned concurrency ----------------------------------------------------------------------------------
    async def put_provisioned(
        self, scope: Scope, ref: FunctionRef, qualifier: str | None, body: dict[str, Any]
    ) -> ProvisionedConfigView:
        LAMBDA.check("PutProvisionedConcurrencyConfig", {**body, "Qualifier": qualifier or None})
        qualifier = _required(qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(UNPUBLISHED_VERSION)
        async with self._changing:
            return await self._put_provisioned(scope, ref, qualifier, body["ProvisionedConcurrentExecutions"])

    async def _put_provisioned(
        self, scope: Scope, ref: FunctionRef, qualifier: str, requested: int
    ) -> ProvisionedConfigView:
        target_config = self._resolve(scope, ref, qualifier)
        function = target_config.key
        self.reconcile(function)
        target = (function, qualifier)
        self._check_overlap(target, target_config)
        others = sum(
            record.requested for key, record in self._provisioned.items() if key[0] == function and key != target
        )
        reserved = self._limits.reserved(function)
        if reserved is not None:
            if reserved < others + requested:
                raise InvalidParameterValueException(OVER_RESERVED)
        else:
            current = self._provisioned[target].requested if target in self._provisioned else 0
            available = self._limits.unreserved(scope) + current
            if requested > available:
                raise LimitExceeded(
                    f"Specified ConcurrentExecutions for function is greater than account's unreserved concurrency "
                    f"[{available}]."
                )
            if available - requested < self._limits.min_unreserved:
                raise LimitExceeded(
                    "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
                    f"below its minimum value of [{self._limits.min_unreserved}]."
                )
        record = ProvisionedConfigRecord(*function, qualifier, requested, aws_timestamp())
        await self._persist(self._store.put_provisioned, record)
        self._provisioned[target] = record
        self._update_total(function)
        self._capacity.apply(target, target_config, requested, retry_failed=True)
        return self._view(target)

    def get_provisioned(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> ProvisionedConfigView:
        qualifier = _required(qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(NOT_A_PUBLISHED_RESOURCE)
        function = self._resolve(scope, ref, qualifier).key
        self.reconcile(function)
        target = (function, qualifier)
        if target not in self._provisioned:
            raise ProvisionedConcurrencyConfigNotFoundException(NO_PROVISIONED_CONFIG)
        return self._view(target)

    async def delete_provisioned(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> None:
        qualifier = _required(qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(NOT_A_PUBLISHED_RESOURCE)
        async with self._changing:
            await self._forget((self._resolve(scope, ref, qualifier).key, qualifier))

    def list_provisioned(self, scope: Scope, ref: FunctionRef) -> list[ProvisionedConfigView]:
        function = self._functions.resolve(scope, ref, None).key
        self.reconcile(function)
        return [self._view(key) for key in sorted(self._provisioned) if key[0] == function]

    def _resolve(self, scope: Scope, ref: FunctionRef, qualifier: str) -> FunctionConfig:
        """The version a version or alias qualifier names, with AWS's wording for each kind of miss."""
        try:
            return self._functions.resolve(scope, ref, qualifier)
        except ResourceNotFoundException as error:
            arn = scope.function(ref.name).arn(qualifier)
            if is_version(qualifier):
                raise ResourceNotFoundException(f"Function not found: {arn}") from error
            raise ResourceNotFoundException(f"Cannot find alias arn: {arn}") from error

    def _check_overlap(self, target: TargetKey, config: FunctionConfig) -> None:
        """One config per version: an alias and the version it points to cannot both be provisioned."""
        for key in self._provisioned:
            if key == target or key[0] != target[0]:
                continue
            other = self._target_version(key)
            if other is None or other != config.version:
                continue
            raise ResourceConflictException(
                VERSION_UNDER_PROVISIONED_ALIAS if is_version(target[1]) else ALIAS_ON_PROVISIONED_VERSION
            )

    def _target_version(self, target: TargetKey) -> str | None:
        function, qualifier = target
        try:
            return self._functions.resolve(function.scope, FunctionRef(function.name), qualifier).version
        except ResourceNotFoundException:
            return None

    def _view(self, target: TargetKey) -> ProvisionedConfigView:
        record = self._provisioned[target]
        allocation = self._capacity.allocation(target)
        function, qualifier = target
        return ProvisionedConfigView(
            record=record,
            arn=function.arn(qualifier),
            allocated=allocation.allocated if allocation is not None else 0,
            status=allocation.status if allocation is not None else ProvisionedStatus.IN_PROGRESS,
            status_reason=allocation.status_reason if allocation is not None else None,
        )

    def _forget(self, target: TargetKey) -> asyncio.Future[None]:
        """Drop a config now (memory, capacity); its row goes on the writer, whose future this returns."""
        function, qualifier = target
        written = self._persist(self._store.delete_provisioned, function, qualifier)
        self._provisioned.pop(target, None)
        self._capacity.remove(target)
        self._update_total(function)
        return written

    def _update_total(self, function: FunctionKey) -> None:
        total = sum(record.requested for key, record in self._provisioned.items() if key[0] == function)
        self._limits.set_provisioned_total(function, total)

    # -- keeping up with function changes ------------------------------------------------------------------------
    def reconcile(self, function: FunctionKey) -> None:
        """After a function, version or alias changed: drop settings of what is gone, follow aliases that moved."""
        if not self._functions.exists(function):
            if self._limits.reserved(function) is not None:
                self._persist(self._store.set_reserved, function, None)
                self._limits.set_reserved(function, None)
            for target in [key for key in self._provisioned if key[0] == function]:
                self._forget(target)
            return
        for target in [key for key in self._provisioned if key[0] == function]:
            try:
                config = self._functions.resolve(function.scope, FunctionRef(function.name), target[1])
            except ResourceNotFoundException:
                self._forget(target)
                continue
            self._capacity.apply(target, config, self._provisioned[target].requested)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _log.error("a concurrency setting was not stored", exc_info=future.exception())


def _required(qualifier: str | None) -> str:
    if not qualifier:
        raise validation_error(None, "qualifier", "Member must not be null")
    return qualifier
