"""Function URL configurations (Create/Get/Update/Delete/ListFunctionUrlConfigs): the rules and AWS's messages.

The records live in `store/function_urls.py`; an in-memory index by URL id answers the URL front door without touching
the database. Writes run on a worker thread (they write SQLite); a lock keeps the index and the store in step.

A URL belongs to the unqualified function or to an alias (never a version: the Qualifier pattern refuses numbers).
It goes with its function. Deleting an alias leaves its URL configured (recorded: the URL then answers 403, since the
alias's permissions went with it), as AWS does.
"""
from __future__ import annotations

import threading
from typing import Any, Protocol

from lamina.control.validation import LAMBDA
from lamina.errors import InvalidParameterValueException, ResourceConflictException, ResourceNotFoundException
from lamina.model.arns import MAX_ARN_LENGTH, FunctionRef, parse_function_name
from lamina.model.function import aws_timestamp
from lamina.model.function_url import AuthType, FunctionUrlConfig, InvokeMode, new_url_id
from lamina.model.keys import FunctionKey, Scope
from lamina.store.function_urls import FunctionUrlStore
from lamina.validation.paging import page, page_size

_NO_FUNCTION = "Function does not exist"
_NO_RESOURCE = "The resource you requested does not exist."
_MISMATCH = "The derived qualifier from the function name does not match the specified qualifier."


class FunctionDirectory(Protocol):
    """What the URL rules need to know of functions and aliases."""

    def function_exists(self, function: FunctionKey) -> bool: ...

    def alias_exists(self, function: FunctionKey, alias: str) -> bool: ...


def _qualifier_order(qualifier: str) -> tuple[int, str]:
    """The unqualified function's URL first (marker "$LATEST"), then aliases by name."""
    return (0, "") if qualifier == "$LATEST" else (1, qualifier)


class FunctionUrlService:
    def __init__(self, store: FunctionUrlStore, functions: FunctionDirectory) -> None:
        self._store = store
        self._functions = functions
        self._by_id: dict[str, FunctionUrlConfig] = {}
        self._by_target: dict[tuple[FunctionKey, str | None], FunctionUrlConfig] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read every URL; those of a function whose deletion was interrupted are dropped."""
        for config in self._store.load_all():
            if self._functions.function_exists(config.function):
                self._index(config)
            else:
                self._store.delete_function(config.function)

    # -- the URL front door ------------------------------------------------------------------------------------------
    def by_id(self, url_id: str) -> FunctionUrlConfig | None:
        return self._by_id.get(url_id)

    # -- operations --------------------------------------------------------------------------------------------------
    def create(
        self, scope: Scope, raw_name: str, query_qualifier: str | None, body: dict[str, Any]
    ) -> FunctionUrlConfig:
        function, qualifier = self._target(scope, raw_name, query_qualifier, "CreateFunctionUrlConfig", body)
        self._require_target(function, qualifier, _NO_FUNCTION)
        now = aws_timestamp()
        with self._lock:
            if (function, qualifier) in self._by_target:
                raise ResourceConflictException(
                    f"Failed to create function url config for [functionArn = {function.arn(qualifier)}]. "
                    "Error message:  FunctionUrlConfig exists for this Lambda function"
                )
            url_id = new_url_id()
            while url_id in self._by_id:
                url_id = new_url_id()
            config = FunctionUrlConfig(
                function=function,
                qualifier=qualifier,
                url_id=url_id,
                auth_type=AuthType(body["AuthType"]),
                creation_time=now,
                last_modified_time=now,
                cors=body.get("Cors"),
                invoke_mode=InvokeMode(body["InvokeMode"]) if body.get("InvokeMode") else None,
            )
            self._store.put(config)
            self._index(config)
        return config

    def get(self, scope: Scope, raw_name: str, query_qualifier: str | None) -> FunctionUrlConfig:
        function, qualifier = self._target(scope, raw_name, query_qualifier, "GetFunctionUrlConfig")
        return self._existing(function, qualifier)

    def update(
        self, scope: Scope, raw_name: str, query_qualifier: str | None, body: dict[str, Any]
    ) -> FunctionUrlConfig:
        function, qualifier = self._target(scope, raw_name, query_qualifier, "UpdateFunctionUrlConfig", body)
        self._require_target(function, qualifier, _NO_FUNCTION)
        changes: dict[str, Any] = {"last_modified_time": aws_timestamp()}
        if body.get("AuthType") is not None:
            changes["auth_type"] = AuthType(body["AuthType"])
        if body.get("Cors") is not None:
            changes["cors"] = body["Cors"]
        if body.get("InvokeMode") is not None:
            changes["invoke_mode"] = InvokeMode(body["InvokeMode"])
        with self._lock:
            current = self._existing(function, qualifier)
            config = current.replace(**changes)
            self._store.put(config)
            self._index(config)
        return config

    def delete(self, scope: Scope, raw_name: str, query_qualifier: str | None) -> None:
        function, qualifier = self._target(scope, raw_name, query_qualifier, "DeleteFunctionUrlConfig")
        with self._lock:
            config = self._existing(function, qualifier)
            self._store.delete(function, qualifier)
            self._unindex(config)

    def list(
        self, scope: Scope, raw_name: str, marker: str | None, raw_max_items: str | None
    ) -> tuple[list[FunctionUrlConfig], str | None]:
        size = page_size(LAMBDA, "ListFunctionUrlConfigs", raw_max_items, Marker=marker)
        ref = parse_function_name(raw_name, max_length=MAX_ARN_LENGTH)
        function = self._function_key(scope, ref)
        if not self._functions.function_exists(function):
            raise ResourceNotFoundException(_NO_FUNCTION)
        configs = sorted(
            (config for (owner, _), config in self._by_target.items() if owner == function),
            key=lambda config: _qualifier_order(config.qualifier or "$LATEST"),
        )
        return page(configs, lambda config: config.qualifier or "$LATEST", marker, size, _qualifier_order)

    def forget_function(self, function: FunctionKey) -> None:
        """The function is gone: so are its URLs (the URL ids stop answering)."""
        with self._lock:
            doomed = [config for (owner, _), config in self._by_target.items() if owner == function]
            if doomed:
                self._store.delete_function(function)
            for config in doomed:
                self._unindex(config)

    # -- helpers -------------------------------------------------------------------------------------------------
    def _target(
        self,
        scope: Scope,
        raw_name: str,
        query_qualifier: str | None,
        operation: str,
        body: dict[str, Any] | None = None,
    ) -> tuple[FunctionKey, str | None]:
        """The function and qualifier a request names, after the name's checks, the model's (the qualifier with the
        body's members, in the model's order) and AWS's qualifier-mismatch rule."""
        ref = parse_function_name(raw_name, max_length=MAX_ARN_LENGTH)
        qualifier = query_qualifier if query_qualifier is not None else ref.qualifier
        LAMBDA.check(operation, {**(body or {}), "Qualifier": qualifier})
        if query_qualifier is not None and ref.qualifier is not None and ref.qualifier != query_qualifier:
            raise InvalidParameterValueException(_MISMATCH)
        return self._function_key(scope, ref), qualifier

    @staticmethod
    def _function_key(scope: Scope, ref: FunctionRef) -> FunctionKey:
        if ref.region is not None and ref.region != scope.region:
            raise ResourceNotFoundException(
                f"Functions from '{ref.region}' are not reachable in this region ('{scope.region}')"
            )
        if ref.account is not None and ref.account != scope.account:
            raise ResourceNotFoundException(_NO_FUNCTION)
        return scope.function(ref.name)

    def _require_target(self, function: FunctionKey, qualifier: str | None, message: str) -> None:
        if not self._functions.function_exists(function):
            raise ResourceNotFoundException(message)
        if qualifier is not None and not self._functions.alias_exists(function, qualifier):
            raise ResourceNotFoundException(message)

    def _existing(self, function: FunctionKey, qualifier: str | None) -> FunctionUrlConfig:
        self._require_target(function, qualifier, _NO_RESOURCE)
        config = self._by_target.get((function, qualifier))
        if config is None:
            raise ResourceNotFoundException(_NO_RESOURCE)
        return config

    def _index(self, config: FunctionUrlConfig) -> None:
        self._by_id[config.url_id] = config
        self._by_target[(config.function, config.qualifier)] = config

    def _unindex(self, config: FunctionUrlConfig) -> None:
        self._by_id.pop(config.url_id, None)
        self._by_target.pop((config.function, config.qualifier), None)
