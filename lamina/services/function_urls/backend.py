"""What the function-URL front door and the URL rules need from the rest of Lamina, in one adapter.

It keeps `FunctionUrlApp` and `FunctionUrlService` free of the control plane's wider interfaces: each sees only the
few questions it asks (does this function or alias exist, which version runs, does the policy open the URL, invoke).
"""
from __future__ import annotations

from lamina.control.function_urls import FunctionUrlService
from lamina.control.functions import FunctionService
from lamina.control.permissions import PermissionService
from lamina.invoke.service import InvocationService, StreamedInvocation
from lamina.model.arns import FunctionRef
from lamina.model.function import FunctionConfig
from lamina.model.function_url import FunctionUrlConfig
from lamina.model.invocation import InvocationOutcome
from lamina.model.keys import FunctionKey


class FunctionsDirectory:
    """`FunctionDirectory` of the URL rules, answered by the function service."""

    def __init__(self, functions: FunctionService) -> None:
        self._functions = functions

    def function_exists(self, function: FunctionKey) -> bool:
        return self._functions.exists(function)

    def alias_exists(self, function: FunctionKey, alias: str) -> bool:
        return self._functions.aliases.get(function, alias) is not None


class UrlBackend:
    """`UrlInvoker` of the front door."""

    def __init__(
        self,
        urls: FunctionUrlService,
        functions: FunctionService,
        permissions: PermissionService,
        invocations: InvocationService,
    ) -> None:
        self._urls = urls
        self._functions = functions
        self._permissions = permissions
        self._invocations = invocations

    def url_config(self, url_id: str) -> FunctionUrlConfig | None:
        return self._urls.by_id(url_id)

    def allows_public_invoke(self, config: FunctionUrlConfig) -> bool:
        return self._permissions.opens_url_to_public(config.function, config.qualifier, config.auth_type.value)

    def resolve(self, config: FunctionUrlConfig) -> FunctionConfig:
        function = config.function
        return self._functions.resolve(function.scope, FunctionRef(function.name), config.qualifier, routed=True)

    async def invoke(self, config: FunctionConfig, url: FunctionUrlConfig, request_id: str,
                     payload: bytes) -> InvocationOutcome:
        return await self._invocations.invoke(config, request_id, payload, url.function_arn)

    async def invoke_streamed(self, config: FunctionConfig, url: FunctionUrlConfig, request_id: str,
                              payload: bytes) -> StreamedInvocation:
        return await self._invocations.invoke_streamed(config, request_id, payload, url.function_arn)
