"""Invoke: the data-plane operation. Function errors are 200 + X-Amz-Function-Error, never 5xx/429."""
from __future__ import annotations

import base64
import binascii
import json

from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call, parse_json
from lamina.asyncinvoke.dispatcher import AsyncInvoker
from lamina.model.arns import merge_qualifier, parse_function_name
from lamina.control.functions import FunctionService
from lamina.model.function import FunctionConfig
from lamina.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestTooLargeException,
    validation_error,
)
from lamina.http.messages import Response
from lamina.invoke.service import InvocationService

MAX_SYNC_PAYLOAD = 6291456
MAX_EVENT_PAYLOAD = 1048576
MAX_CLIENT_CONTEXT = 3583
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_JACKSON_SOURCE = "[Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"


def _json_error(error: ValueError) -> InvalidRequestContentException:
    """AWS's (Jackson's) framing of a payload that is not JSON, with Python's description of the fault."""
    line, column = (error.lineno, error.colno) if isinstance(error, json.JSONDecodeError) else (1, 1)
    detail = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
    return InvalidRequestContentException(
        f"Could not parse request body into json: Could not parse payload into json: {detail}\n"
        f" at {_JACKSON_SOURCE}; line: {line}, column: {column}]"
    )


def decode_client_context(raw: str | None) -> str | None:
    """X-Amz-Client-Context is base64 JSON on the wire; the runtime receives the decoded JSON."""
    if raw is None:
        return None
    if len(raw) > MAX_CLIENT_CONTEXT:
        raise InvalidParameterValueException("Client context must be smaller than 3583 bytes.")
    try:
        decoded = base64.b64decode(raw, validate=True).decode()
        parse_json(decoded)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidRequestContentException("Client context must be a valid Base64-encoded JSON object.") from error
    return decoded


def runtime_payload(config: FunctionConfig, payload: bytes) -> bytes:
    """The bytes the runtime receives: `{}` for an empty body; managed runtimes only take JSON."""
    if not payload:
        return b"{}"
    if not (config.runtime or "").startswith("provided"):
        try:
            parse_json(payload)
        except (ValueError, UnicodeDecodeError) as error:
            raise _json_error(error) from error
    return payload


class InvokeOperations:
    def __init__(self, functions: FunctionService, invocations: InvocationService, events: AsyncInvoker) -> None:
        self._functions = functions
        self._invocations = invocations
        self._events = events

    def register(self, router: Router) -> None:
        router.operation("Invoke", self.invoke)

    async def invoke(self, call: Call) -> Response:
        headers = call.request.headers
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            raise validation_error(
                invocation_type, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )
        ref = parse_function_name(call.params["FunctionName"])
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        config = self._functions.resolve(call.scope, ref, qualifier, routed=True)
        payload = call.request.body
        limit = MAX_EVENT_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
        if len(payload) > limit:
            raise RequestTooLargeException(
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
            )
        # The model has one responseCode (200, a RequestResponse answer); AWS answers a DryRun 204 and an accepted
        # Event 202, which the model only documents in the StatusCode member.
        if invocation_type == "DryRun":
            return call.reply(status=204)
        payload = runtime_payload(config, payload)
        if invocation_type == "Event":
            await self._events.enqueue(config.key, qualifier, call.request_id, payload)
            return call.reply(status=202)
        outcome = await self._invocations.invoke(
            config,
            call.request_id,
            payload,
            config.key.arn(qualifier if qualifier else None),
            client_context=decode_client_context(headers.get("x-amz-client-context")),
            want_log_tail=headers.get("x-amz-log-type") == "Tail",
        )
        response_headers = [
            ("x-amzn-RequestId", call.request_id),
            ("Content-Type", outcome.content_type),
            ("X-Amz-Executed-Version", config.version),
        ]
        if outcome.function_error is not None:
            response_headers.append(("X-Amz-Function-Error", outcome.function_error))
        if outcome.log_tail is not None:
            response_headers.append(("X-Amz-Log-Result", outcome.log_tail))
        return Response(call.status, outcome.payload, response_headers)
