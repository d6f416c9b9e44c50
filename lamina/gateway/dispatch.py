"""The front door: every request on Lamina's port goes to one service app, chosen in this order

1. by Host: `<url-id>.lambda-url.<region>.<domain>` is a function URL (`function_urls`; today every such host
   answers 403 `{"Message":null}`, as AWS's front end does for a URL that does not exist);
2. by the SigV4 signing name, the service in the credential scope (Authorization header, or X-Amz-Credential of a
   presigned URL), which also gives the region;
3. for requests to `/` (the JSON and query protocols post there): by `X-Amz-Target`'s prefix (JSON 1.0/1.1), then by
   the query protocol's `Version` and `Action`;
4. else the default app, Lambda's (unsigned requests, Lamina's own /lamina/ endpoints, Code.Location downloads).

The gateway makes the request's RequestContext once and hands it to the app; each app serialises its errors in its
own protocol (`on_error`, also for the HTTP layer's refusals).

Only the default app is known at construction: the routing tables of the other services (signing names, X-Amz-Target
prefixes, query API versions and actions) come from their botocore models, so they are built on the first request that
needs them (see `Gateway`), not at start-up.
"""
from __future__ import annotations

import re
import threading
from typing import Iterable, Protocol, Sequence
from urllib.parse import parse_qs

from lamina.gateway.context import RequestContext
from lamina.gateway.unserved import query_parameters
from lamina.http.limits import ConnectionLimiter, HttpLimits
from lamina.http.messages import HandlerResult, Request, Response
from lamina.http.protocol import HttpProtocol

#: The region and service of a SigV4 credential scope: `Credential=AKID/20261201/us-east-1/lambda/aws4_request`.
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/")
#: What every request may send; an app's body_limit is asked for a request that may send more.
MAX_BODY = 1048576
FUNCTION_URL_MARK = ".lambda-url."


class ServiceApp(Protocol):
    """One AWS service on Lamina's port."""

    @property
    def signing_name(self) -> str: ...

    def handle(self, request: Request, context: RequestContext) -> HandlerResult: ...

    def body_limit(self, request: Request) -> int: ...

    def on_error(self, request: Request, error: BaseException) -> Response: ...


class UnknownFunctionUrls:
    """The function-URL hook: until URLs are served, every URL host is one that does not exist (AWS: 403 with
    `{"Message":null}`). The function-URL app replaces it (`Gateway(function_urls=...)`)."""

    signing_name = "lambda"

    def handle(self, request: Request, context: RequestContext) -> Response:
        return self.forbidden(context.request_id)

    def body_limit(self, request: Request) -> int:
        return MAX_BODY

    def on_error(self, request: Request, error: BaseException) -> Response:
        return self.forbidden(None)

    @staticmethod
    def forbidden(request_id: str | None) -> Response:
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException")]
        if request_id is not None:
            headers.insert(0, ("x-amzn-RequestId", request_id))
        return Response(403, b'{"Message":null}', headers)


def signing_scope(request: Request) -> tuple[str, str] | None:
    """(region, service) of the request's SigV4 credential scope, None when it is not signed."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        found = _SCOPE.search(authorization)
        return (found.group(1), found.group(2)) if found else None
    if "X-Amz-Credential" in request.query:
        parts = (parse_qs(request.query).get("X-Amz-Credential") or [""])[-1].split("/")
        if len(parts) > 3:
            return parts[2], parts[3]
    return None


class _RoutingTables:
    """Which app serves a signing name, an X-Amz-Target prefix, a query API version or a query action."""

    __slots__ = ("by_signing_name", "by_target", "by_version", "by_action")

    def __init__(self, apps: Sequence[ServiceApp]) -> None:
        """Reads every app's signing name and description: for an unserved service, that loads its model."""
        self.by_signing_name = {app.signing_name: app for app in apps}
        self.by_target: dict[str, ServiceApp] = {}
        self.by_version: dict[str, ServiceApp] = {}
        self.by_action: dict[str, ServiceApp] = {}
        shared: set[str] = set()
        for app in apps:
            description = getattr(app, "description", None)
            if description is None:
                continue
            if description.target_prefix:
                self.by_target[description.target_prefix] = app
            if description.api_version:
                self.by_version[description.api_version] = app
                for action in description.operations:
                    if action in self.by_action:
                        shared.add(action)
                    self.by_action[action] = app
        for action in shared:  # an action two query services share tells neither apart
            del self.by_action[action]


class Gateway:
    """Dispatches each request to its service app.

    Construction reads nothing of `services`: what the Lambda service needs is routed without them (the default app
    serves its own signing name, and unsigned requests other than to `/` with an X-Amz-Target, `Version` or `Action`).
    The first request that needs the other services' routing tables (signed for another service, or to `/` with one of
    those) builds them, once, under a lock: with the unserved services that loads their four botocore models, a
    one-time ~50 ms on the event loop, paid by a rare request (a client of a service not served yet) rather than by
    every start-up.
    """

    def __init__(
        self,
        default: ServiceApp,
        services: Iterable[ServiceApp] = (),
        *,
        account: str,
        default_region: str,
        function_urls: ServiceApp | None = None,
    ) -> None:
        self._default = default
        self._default_signing_name = default.signing_name
        self._account = account
        self._default_region = default_region
        self.function_urls: ServiceApp = function_urls or UnknownFunctionUrls()
        self._apps: tuple[ServiceApp, ...] = (default, *services)
        self._tables: _RoutingTables | None = None
        self._building = threading.Lock()

    def _routing(self) -> _RoutingTables:
        """The routing tables of every app, built by the first caller (the others wait for it)."""
        tables = self._tables
        if tables is None:
            with self._building:
                tables = self._tables
                if tables is None:
                    tables = self._tables = _RoutingTables(self._apps)
        return tables

    def protocol(self, limits: HttpLimits, connections: ConnectionLimiter | None = None) -> HttpProtocol:
        """The protocol of one API connection."""
        return HttpProtocol(
            self.handle,
            max_body=MAX_BODY,
            body_limit=self.body_limit,
            on_error=self.on_error,
            limits=limits,
            connections=connections,
        )

    def dispatch(self, request: Request) -> tuple[ServiceApp, str]:
        """The app that serves `request`, and the request's region."""
        host = request.headers.get("host")
        if host is not None and FUNCTION_URL_MARK in host:
            return self.function_urls, self._default_region
        scope = signing_scope(request)
        region = self._default_region
        if scope is not None:
            region = scope[0]
            if scope[1] == self._default_signing_name:
                return self._default, region  # Lambda's own requests never need the other services' tables
            app = self._routing().by_signing_name.get(scope[1])
            if app is not None:
                return app, region
        if request.path == "/":
            app = self._by_protocol(request)
            if app is not None:
                return app, region
        return self._default, region

    def _by_protocol(self, request: Request) -> ServiceApp | None:
        target = request.headers.get("x-amz-target")
        if target is not None:
            return self._routing().by_target.get(target.partition(".")[0])
        parameters = query_parameters(request)
        version = (parameters.get("Version") or [""])[-1]
        action = (parameters.get("Action") or [""])[-1]
        if not version and not action:
            return None  # no service has an empty API version or action: nothing to look up
        tables = self._routing()
        if version in tables.by_version:
            return tables.by_version[version]
        return tables.by_action.get(action)

    def handle(self, request: Request) -> HandlerResult:
        app, region = self.dispatch(request)
        return app.handle(request, RequestContext(self._account, region, app.signing_name))

    def body_limit(self, request: Request) -> int:
        return self.dispatch(request)[0].body_limit(request)

    def on_error(self, request: Request, error: BaseException) -> Response:
        return self.dispatch(request)[0].on_error(request, error)


def api_limits(header_timeout: float, body_timeout: float, idle_timeout: float) -> HttpLimits:
    """An API connection's limits: request line and headers as AWS's front ends take them (16 KB, 100 headers), an
    8 KB URL, and the given timeouts (0: none)."""
    return HttpLimits(
        max_head=16384,
        max_headers=100,
        max_url=8192,
        header_timeout=header_timeout or None,
        body_timeout=body_timeout or None,
        idle_timeout=idle_timeout or None,
    )
