"""The function-URL front door: a request whose Host is `<url-id>.lambda-url.<region>.<url-domain>` runs the function
that URL belongs to, as AWS's URL front end does (the gateway routes it here by Host).

Order, as AWS answers: unknown URL (403 `{"Message":null}`), authorization (a NONE URL needs a resource policy that
opens lambda:InvokeFunctionUrl to `*`), CORS preflight (answered from the URL's Cors without invoking), payload limit
(413), then the invocation (throttled: 429; failed or timed out: 502; otherwise the mapped result).

A RESPONSE_STREAM URL whose function streams is answered as the function writes: the status and headers come from the
stream's HTTP-integration prelude (`application/vnd.awslambda.http-integration-response`, Node's
`awslambda.HttpResponseStream.from`), or are 200 and the stream's own Content-Type; the body follows chunked, each
piece as it arrives. A failure before the head is known (an error, a timeout, a prelude that cannot be read) is the
buffered 502; after it the status is out, so the body just ends there (its last chunk). A RESPONSE_STREAM URL of a
function that answers buffered, and a BUFFERED URL of one that streams (read whole, at most 6 MiB), are mapped as
buffered results, except that a whole HTTP-integration response gives its prelude's status and headers.
"""
from __future__ import annotations

import json
import time
from typing import AsyncIterator, Callable, Protocol

from lamina.errors import LambdaError, TooManyRequestsException
from lamina.gateway.context import RequestContext
from lamina.http.messages import BodyTooLarge, Request, Response
from lamina.model.function import FunctionConfig
from lamina.invoke.service import StreamedInvocation
from lamina.model.function_url import AuthType, FunctionUrlConfig, InvokeMode
from lamina.model.invocation import InvocationOutcome, ResponseBody
from lamina.services.function_urls import cors, response
from lamina.services.function_urls.event import build_event
from lamina.services.function_urls.ids import parse_url_host, url_domain_name
from lamina.services.function_urls.response import REQUEST_ID_HEADER, HttpResult
from lamina.services.function_urls.streaming import (
    HttpIntegrationStream,
    PreludeError,
    StreamHead,
    StreamPart,
    integration_result,
    is_http_integration,
)

#: The event may carry at most a synchronous invocation's payload; the HTTP layer may read a little more, since the
#: base64 form of a binary body grows by a third (the event is checked again once built).
MAX_REQUEST_BODY = response.MAX_PAYLOAD_BYTES
#: Compact, as AWS sends events; made once (json.dumps with options builds an encoder per call).
_EVENT_ENCODER = json.JSONEncoder(separators=(",", ":"))


class UrlInvoker(Protocol):
    """What the front door needs from the rest of Lamina."""

    def url_config(self, url_id: str) -> FunctionUrlConfig | None: ...

    def allows_public_invoke(self, config: FunctionUrlConfig) -> bool:
        """Whether the resource policy of the URL's function (or alias) opens lambda:InvokeFunctionUrl to `*`."""
        ...

    def resolve(self, config: FunctionUrlConfig) -> FunctionConfig:
        """The version the URL runs now (an alias picks by weight); LambdaError if its target is gone."""
        ...

    async def invoke(self, config: FunctionConfig, url: FunctionUrlConfig, request_id: str,
                     payload: bytes) -> InvocationOutcome: ...

    async def invoke_streamed(self, config: FunctionConfig, url: FunctionUrlConfig, request_id: str,
                              payload: bytes) -> StreamedInvocation: ...


class FunctionUrlApp:
    """The ServiceApp the gateway gives URL hosts (`Gateway(function_urls=...)`)."""

    signing_name = "lambda"

    def __init__(self, invoker: UrlInvoker, url_domain: str, port: Callable[[], int]) -> None:
        self._invoker = invoker
        self._url_domain = url_domain
        self._port = port

    def body_limit(self, request: Request) -> int:
        return MAX_REQUEST_BODY

    def on_error(self, request: Request, error: BaseException) -> Response:
        if isinstance(error, BodyTooLarge):
            return _response(response.request_too_large(), None)
        return _response(response.function_error(), None)

    async def handle(self, request: Request, context: RequestContext) -> Response:
        request_id = context.request_id
        host = parse_url_host(request.headers.get("host", ""), self._url_domain)
        url = self._invoker.url_config(host.url_id) if host is not None else None
        if host is None or url is None or url.function.region != host.region:
            return _response(response.url_not_found(), request_id)
        if url.auth_type is AuthType.NONE and not self._invoker.allows_public_invoke(url):
            return _response(response.forbidden(), request_id)
        headers = list(request.headers.items())
        preflight = cors.preflight_response(url.cors, request.method, headers)
        if preflight is not None:
            return _response(preflight, request_id)
        try:
            config = self._invoker.resolve(url)
        except LambdaError:
            return _response(response.forbidden(), request_id)
        event = build_event(
            method=request.method,
            target=request.path + (f"?{request.query}" if request.query else ""),
            headers=headers,
            body=request.body,
            source_ip=request.client,
            url_id=url.url_id,
            region=url.function.region,
            request_id=request_id,
            now=time.time(),
            account_id=url.function.account if url.auth_type is AuthType.AWS_IAM else "anonymous",
            domain_name=url_domain_name(url.url_id, url.function.region, self._url_domain),
            server_port=self._port(),
        )
        payload = _EVENT_ENCODER.encode(event).encode()
        if len(payload) > response.MAX_PAYLOAD_BYTES:
            return _response(response.request_too_large(), request_id)
        try:
            if url.effective_invoke_mode is InvokeMode.RESPONSE_STREAM:
                started = await self._invoker.invoke_streamed(config, url, request_id, payload)
                if started.head.stream is not None:
                    return await _streamed(started, started.head.stream, url, headers, request_id)
                outcome = started.head
            else:
                outcome = await self._invoker.invoke(config, url, request_id, payload)
        except TooManyRequestsException:
            return _response(response.throttled(), request_id)
        except LambdaError:
            return _response(response.function_error(), request_id)
        if outcome.function_error is not None:
            return _response(response.function_error(), request_id)
        if is_http_integration(outcome.content_type):  # a streaming function's prelude, read whole
            try:
                status, answer_headers, body = integration_result(outcome.payload, outcome.content_type)
            except PreludeError:
                return _response(response.function_error(), request_id)
        else:
            status, answer_headers, body = response.map_buffered_result(outcome.payload)
        return _response((status, cors.actual_response_headers(url.cors, headers, answer_headers), body), request_id)


async def _streamed(started: StreamedInvocation, stream: ResponseBody, url: FunctionUrlConfig,
                    request_headers: list[tuple[str, str]], request_id: str) -> Response:
    """The answer to a RESPONSE_STREAM URL whose function streams: read until the head is known, then the rest of the
    body as it comes."""
    parser = HttpIntegrationStream(stream.content_type)
    parts: list[StreamPart] = []
    try:
        async for chunk in stream:
            parts = parser.feed(chunk)
            if parts:
                break
        else:
            if (await started.finish()).function_error is not None:
                return _response(response.function_error(), request_id)
            parts = parser.finish()
    except PreludeError:
        started.abandon()
        return _response(response.function_error(), request_id)
    head = parts[0]
    assert isinstance(head, StreamHead)
    pending = [part for part in parts[1:] if isinstance(part, bytes) and part]
    answer_headers = cors.actual_response_headers(url.cors, request_headers, head.headers)
    return Response(head.status, _body(started, stream, parser, pending),
                    [(REQUEST_ID_HEADER, request_id), *answer_headers])


async def _body(started: StreamedInvocation, stream: ResponseBody, parser: HttpIntegrationStream,
                pending: list[bytes]) -> AsyncIterator[bytes]:
    """The body after the head: what the head's chunk carried, then each piece as the runtime sends it. However the
    stream ends (an error after the head included), the body ends there; a client that went away drops the rest."""
    try:
        for data in pending:
            yield data
        async for chunk in stream:
            for part in parser.feed(chunk):
                if isinstance(part, bytes) and part:
                    yield part
    finally:
        started.abandon()


def _response(result: HttpResult, request_id: str | None) -> Response:
    status, headers, body = result
    if request_id is not None:
        headers = [(REQUEST_ID_HEADER, request_id), *headers]
    return Response(status, body, headers)
