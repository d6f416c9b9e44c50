"""Route table: (method, URI template from the service model) -> operation handler, and the operation's AWS name."""
from __future__ import annotations

import re
from typing import Awaitable, Callable, NamedTuple, Union

from lamina.services.lambda_.wire import Call
from lamina.http.server import Response

OperationHandler = Callable[[Call], Union[Response, Awaitable[Response]]]

#: AWS's operation names where they differ from the handler's name in CamelCase (get_function -> GetFunction). AWS
#: says "InvokeFunction" in its errors (e.g. "Request must be smaller than ... for the InvokeFunction operation").
_OPERATION_NAMES = {
    "invoke": "InvokeFunction",
    "list_versions": "ListVersionsByFunction",
    "put_config": "PutFunctionEventInvokeConfig",
    "update_config": "UpdateFunctionEventInvokeConfig",
    "get_config": "GetFunctionEventInvokeConfig",
    "delete_config": "DeleteFunctionEventInvokeConfig",
    "list_configs": "ListFunctionEventInvokeConfigs",
}


class Route(NamedTuple):
    handler: OperationHandler
    operation: str


def operation_name(handler: OperationHandler) -> str:
    name = getattr(handler, "__name__", "")
    return _OPERATION_NAMES.get(name) or "".join(part.capitalize() for part in name.split("_"))


def _compile(template: str) -> re.Pattern[str]:
    """`/2015-03-31/functions/{FunctionName}/code` -> a regex with one named group per path parameter."""
    pattern = re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}/?$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []

    def add(self, method: str, template: str, handler: OperationHandler) -> None:
        self._routes.append((method, _compile(template), Route(handler, operation_name(handler))))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None | bool:
        """The route and raw path parameters; False when the path exists with another method; None if unknown."""
        path_known = False
        for route_method, pattern, route in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if route_method == method:
                return route, found.groupdict()
            path_known = True
        return False if path_known else None
