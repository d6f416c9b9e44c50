"""Route table: each operation's HTTP method, URI template and success status come from botocore's Lambda model;
handlers register by operation name. Invoke has an explicit fast path, checked before the general match."""
from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, NamedTuple, Union
from urllib.parse import parse_qs

from lamina.validation.service_models import service_model
from lamina.http.messages import Response
from lamina.services.lambda_.wire import Call

OperationHandler = Callable[[Call], Union[Response, Awaitable[Response]]]
#: The operation the fast path serves (the warm path: one check of the method and the path's end, one regex).
FAST_OPERATION = "Invoke"


class Route(NamedTuple):
    handler: OperationHandler
    #: The AWS operation name, the model's (Lamina's own endpoints: a name of Lamina's).
    operation: str
    #: The status of a success, the model's responseCode.
    status: int
    method: str
    #: The URI template, the model's requestUri without its query part.
    template: str
    #: Query parameters the model's requestUri requires (`?List=ALL`), which tell operations on one path apart.
    required_query: tuple[tuple[str, str], ...] = ()


def _compile(template: str) -> re.Pattern[str]:
    """`/2015-03-31/functions/{FunctionName}/code` -> a regex with one named group per path parameter."""
    pattern = re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}/?$")


class Router:
    def __init__(self, model: dict[str, Any] | None = None) -> None:
        self._model = model if model is not None else service_model("lambda")
        self._routes: list[tuple[re.Pattern[str], Route]] = []
        self._fast: tuple[re.Pattern[str], Route] | None = None

    def operation(self, name: str, handler: OperationHandler) -> Route:
        """Serves the model's operation `name` with `handler`, on the model's method and URI."""
        http = self._model["operations"][name]["http"]
        template, _, query = http["requestUri"].partition("?")
        required = tuple((key, values[0]) for key, values in parse_qs(query, keep_blank_values=True).items())
        route = Route(handler, name, int(http.get("responseCode", 200)), http["method"], template, required)
        self._add(route)
        return route

    def lamina(self, method: str, template: str, handler: OperationHandler, name: str, status: int = 200) -> Route:
        """One of Lamina's own endpoints (under /lamina/, for operators; in no AWS model)."""
        assert template.startswith("/lamina/"), template
        route = Route(handler, name, status, method, template)
        self._add(route)
        return route

    def _add(self, route: Route) -> None:
        entry = (_compile(route.template), route)
        if route.operation == FAST_OPERATION:
            self._fast = entry
        # Routes that need a query parameter come before the plain route on the same path.
        index = len(self._routes) if not route.required_query else next(
            (i for i, (_, other) in enumerate(self._routes) if not other.required_query), len(self._routes)
        )
        self._routes.insert(index, entry)

    @property
    def routes(self) -> list[Route]:
        return [route for _, route in self._routes]

    def match(self, method: str, path: str, query: str = "") -> tuple[Route, dict[str, str]] | None | bool:
        """The route and raw path parameters; False when the path exists with another method; None if unknown."""
        fast = self._fast
        if method == "POST" and fast is not None and path.endswith("/invocations"):
            found = fast[0].match(path)
            if found is not None:
                return fast[1], found.groupdict()
        path_known = False
        parsed: dict[str, list[str]] | None = None
        for pattern, route in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if route.method != method:
                path_known = True
                continue
            if route.required_query:
                if parsed is None:
                    parsed = parse_qs(query, keep_blank_values=True)
                if any(parsed.get(key, [None])[-1] != value for key, value in route.required_query):
                    continue
            return route, found.groupdict()
        return False if path_known else None
