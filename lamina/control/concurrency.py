"""Concurrency settings: reserved concurrency per function and provisioned-concurrency configs per qualifier.

The rules and AWS's messages live here; the settings are persisted in the concurrency store and pushed into
the in-memory limits (lamina/invoke/concurrency.py) and provisioned capacity (lamina/invoke/provisioned.py)
that the invoke path reads. Everything runs on the event loop.

Configs follow the function: `reconcile` drops what names a deleted function, version or alias and re-targets
a config whose alias moved. It runs after every function change, before every read of the settings, and once a
second (aliases move without telling anyone).
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from lamina.supervisor import supervised
from lamina.model.arns import LATEST, FunctionRef, function_arn, is_version
from lamina.control.functions import FunctionService
from lamina.control.validation import LAMBDA
from lamina.model.function import FunctionConfig, aws_timestamp
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
        account: str,
    ) -> None:
        self._store = store
        self._functions = functions
        self._limits = limits
        self._capacity = capacity
        self._account = account
        self._provisioned: dict[TargetKey, ProvisionedConfigRecord] = {}
        self._upkeep: asyncio.Task[None] | None = None

    def load(self) -> None:
        for (region, name), reserved in self._store.reserved().items():
            if self._functions.exists(region, name):
                self._limits.set_reserved(region, name, reserved)
            else:  # deleted just before a crash
                self._store.set_reserved(region, name, None)
        for record in self._store.provisioned():
            self._provisioned[(record.region, record.name, record.qualifier)] = record
        for region, name in {(region, name) for region, name, _ in self._provisioned}:
            self._update_total(region, name)

    def start(self) -> None:
        """Begin provisioning the stored configs and keep them in line (needs the running event loop)."""
        self._reconcile_all()
        self._upkeep = asyncio.create_task(supervised("provisioned-concurrency upkeep", self._run_upkeep))

    async def close(self) -> None:
        """Stop the upkeep and every provisioned environment."""
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        self._capacity.close()

    async def _run_upkeep(self) -> None:
        while True:
            await asyncio.sleep(UPKEEP_INTERVAL_SECONDS)
            self._reconcile_all()
            self._capacity.upkeep()

    def _reconcile_all(self) -> None:
        for region, name in {(region, name) for region, name, _ in self._provisioned}:
            self.reconcile(region, name)

    # -- reserved concurrency --------------------------------------------------------------------------------------
    def put_reserved(self, region: str, ref: FunctionRef, body: dict[str, Any]) -> int:
        LAMBDA.check("PutFunctionConcurrency", body)
        reserved: int = body["ReservedConcurrentExecutions"]
        self._unqualified(region, ref, missing_qualifier=LATEST)
        current = self._limits.reserved(region, ref.name)
        provisioned = self._limits.provisioned_total(region, ref.name)
        taken_now = current if current is not None else provisioned
        if self._limits.unreserved(region) + taken_now - reserved < self._limits.min_unreserved:
            raise LimitExceeded(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
                f"below its minimum value of [{self._limits.min_unreserved}]."
            )
        if provisioned > reserved:
            raise LimitExceeded(
                f" ReservedConcurrentExecutions  {reserved} should not be lower than function's total provisioned "
                f"concurrency [{provisioned}]."
            )
        self._store.set_reserved(region, ref.name, reserved)
        self._limits.set_reserved(region, ref.name, reserved)
        return reserved

    def get_reserved(self, region: str, ref: FunctionRef) -> int | None:
        self._unqualified(region, ref)
        return self._limits.reserved(region, ref.name)

    def delete_reserved(self, region: str, ref: FunctionRef) -> None:
        self._unqualified(region, ref)
        self._store.set_reserved(region, ref.name, None)
        self._limits.set_reserved(region, ref.name, None)

    def reserved(self, region: str, name: str) -> int | None:
        return self._limits.reserved(region, name)

    def account_limit(self, region: str) -> dict[str, int]:
        return {
            "ConcurrentExecutions": self._limits.account_limit,
            "UnreservedConcurrentExecutions": self._limits.unreserved(region),
        }

    def _unqualified(self, region: str, ref: FunctionRef, missing_qualifier: str | None = None) -> None:
        if ref.qualifier is not None:
            raise InvalidParameterValueException(UNQUALIFIED_ONLY)
        try:
            self._functions.resolve(region, ref, None)
        except ResourceNotFoundException as error:
            if missing_qualifier is None:
                raise
            raise ResourceNotFoundException(
                f"Function not found: {function_arn(region, self._account, ref.name, missing_qualifier)}"
            ) from error

    # -- provisioned concurrency ----------------------------------------------------------------------------------
    def put_provisioned(
        self, region: str, ref: FunctionRef, qualifier: str | None, body: dict[str, Any]
    ) -> ProvisionedConfigView:
        LAMBDA.check("PutProvisionedConcurrencyConfig", {**body, "Qualifier": qualifier or None})
        requested: int = body["ProvisionedConcurrentExecutions"]
        qualifier = _required(qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(UNPUBLISHED_VERSION)
        target_config = self._resolve(region, ref, qualifier)
        self.reconcile(region, ref.name)
        target = (region, ref.name, qualifier)
        self._check_overlap(target, target_config)
        others = sum(
            record.requested for key, record in self._provisioned.items() if key[:2] == target[:2] and key != target
        )
        reserved = self._limits.reserved(region, ref.name)
        if reserved is not None:
            if reserved < others + requested:
                raise InvalidParameterValueException(OVER_RESERVED)
        else:
            current = self._provisioned[target].requested if target in self._provisioned else 0
            available = self._limits.unreserved(region) + current
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
        record = ProvisionedConfigRecord(region, ref.name, qualifier, requested, aws_timestamp())
        self._store.put_provisioned(record)
        self._provisioned[target] = record
        self._update_total(region, ref.name)
        self._capacity.apply(target, target_config, requested, retry_failed=True)
        return self._view(target)

    def get_provisioned(self, region: str, ref: FunctionRef, qualifier: str | None) -> ProvisionedConfigView:
        qualifier = _required(qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(NOT_A_PUBLISHED_RESOURCE)
        self._resolve(region, ref, qualifier)
        self.reconcile(region, ref.name)
        target = (region, ref.name, qualifier)
        if target not in self._provisioned:
            raise ProvisionedConcurrencyConfigNotFoundException(NO_PROVISIONED_CONFIG)
        return self._view(target)

    def delete_provisioned(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        qualifier = _required(qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException(NOT_A_PUBLISHED_RESOURCE)
        self._resolve(region, ref, qualifier)
        self._forget((region, ref.name, qualifier))

    def list_provisioned(self, region: str, ref: FunctionRef) -> list[ProvisionedConfigView]:
        self._functions.resolve(region, ref, None)
        self.reconcile(region, ref.name)
        return [self._view(key) for key in sorted(self._provisioned) if key[:2] == (region, ref.name)]

    def _resolve(self, region: str, ref: FunctionRef, qualifier: str) -> FunctionConfig:
        """The version a version or alias qualifier names, with AWS's wording for each kind of miss."""
        try:
            return self._functions.resolve(region, ref, qualifier)
        except ResourceNotFoundException as error:
            arn = function_arn(region, self._account, ref.name, qualifier)
            if is_version(qualifier):
                raise ResourceNotFoundException(f"Function not found: {arn}") from error
            raise ResourceNotFoundException(f"Cannot find alias arn: {arn}") from error

    def _check_overlap(self, target: TargetKey, config: FunctionConfig) -> None:
        """One config per version: an alias and the version it points to cannot both be provisioned."""
        for key in self._provisioned:
            if key == target or key[:2] != target[:2]:
                continue
            other = self._target_version(key)
            if other is None or other != config.version:
                continue
            raise ResourceConflictException(
                VERSION_UNDER_PROVISIONED_ALIAS if is_version(target[2]) else ALIAS_ON_PROVISIONED_VERSION
            )

    def _target_version(self, target: TargetKey) -> str | None:
        region, name, qualifier = target
        try:
            return self._functions.resolve(region, FunctionRef(name), qualifier).version
        except ResourceNotFoundException:
            return None

    def _view(self, target: TargetKey) -> ProvisionedConfigView:
        record = self._provisioned[target]
        allocation = self._capacity.allocation(target)
        region, name, qualifier = target
        return ProvisionedConfigView(
            record=record,
            arn=function_arn(region, self._account, name, qualifier),
            allocated=allocation.allocated if allocation is not None else 0,
            status=allocation.status if allocation is not None else ProvisionedStatus.IN_PROGRESS,
            status_reason=allocation.status_reason if allocation is not None else None,
        )

    def _forget(self, target: TargetKey) -> None:
        region, name, qualifier = target
        self._store.delete_provisioned(region, name, qualifier)
        self._provisioned.pop(target, None)
        self._capacity.remove(target)
        self._update_total(region, name)

    def _update_total(self, region: str, name: str) -> None:
        total = sum(record.requested for key, record in self._provisioned.items() if key[:2] == (region, name))
        self._limits.set_provisioned_total(region, name, total)

    # -- keeping up with function changes ------------------------------------------------------------------------
    def reconcile(self, region: str, name: str) -> None:
        """After a function, version or alias changed: drop settings of what is gone, follow aliases that moved."""
        if not self._functions.exists(region, name):
            if self._limits.reserved(region, name) is not None:
                self._store.set_reserved(region, name, None)
                self._limits.set_reserved(region, name, None)
            for target in [key for key in self._provisioned if key[:2] == (region, name)]:
                self._forget(target)
            return
        for target in [key for key in self._provisioned if key[:2] == (region, name)]:
            try:
                config = self._functions.resolve(region, FunctionRef(name), target[2])
            except ResourceNotFoundException:
                self._forget(target)
                continue
            self._capacity.apply(target, config, self._provisioned[target].requested)


def _required(qualifier: str | None) -> str:
    if not qualifier:
        raise validation_error(None, "qualifier", "Member must not be null")
    return qualifier
