"""Route table: (method, URI template from the service model) -> operation handler."""
from __future__ import annotations

import re
from typing import Awaitable, Callable, Union

from lamina.api.wire import Call
from lamina.http.server import Response

OperationHandler = Callable[[Call], Union[Response, Awaitable[Response]]]


def _compile(template: str) -> re.Pattern[str]:
    """`/2015-03-31/functions/{FunctionName}/code` -> a regex with one named group per path parameter."""
    pattern = re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}/?$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], OperationHandler]] = []

    def add(self, method: str, template: str, handler: OperationHandler) -> None:
        self._routes.append((method, _compile(template), handler))

    def match(self, method: str, path: str) -> tuple[OperationHandler, dict[str, str]] | None | bool:
        """The handler and raw path parameters; False when the path exists with another method; None if unknown."""
        path_known = False
        for route_method, pattern, handler in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if route_method == method:
                return handler, found.groupdict()
            path_known = True
        return False if path_known else None
