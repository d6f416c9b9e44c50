"""How an invocation is framed for a runtime: the answer to its `GET /runtime/invocation/next`."""
from __future__ import annotations

from lamina.http.messages import Response
from lamina.model.invocation import Invocation


def event_response(invocation: Invocation, deadline_ms: int) -> Response:
    """The event with the headers every runtime interface client reads (request id, deadline, ARN, trace)."""
    headers = [
        ("Content-Type", "application/json"),
        ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
        ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
        ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_arn),
        ("Lambda-Runtime-Trace-Id", invocation.trace_id),
    ]
    if invocation.client_context is not None:
        headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
    if invocation.cognito_identity is not None:
        headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
    return Response(200, invocation.payload, headers)
