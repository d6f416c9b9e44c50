"""The apps of AWS services Lamina will serve on its port but does not yet (CloudWatch Logs, CloudWatch, IAM, STS):
each answers in its own protocol's error format, naming the operation, so an SDK raises a ClientError with a code
rather than failing to parse a Lambda error. Protocol metadata and operation names come from botocore's models,
each loaded the first time its app is asked for them (`UnservedService.description`), not at start-up."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs

from lamina.gateway.context import RequestContext
from lamina.validation.service_models import service_model
from lamina.gateway.protocols import AwsError, cbor_error, json_error, query_error
from lamina.http.messages import BodyTooLarge, HttpError, Request, Response

FORM_TYPE = "application/x-www-form-urlencoded"
_log = logging.getLogger("lamina.gateway")


@dataclass(frozen=True)
class ServiceDescription:
    """What the gateway needs to know of a service to route to it and answer in its protocol."""

    name: str  # botocore's name (logs, cloudwatch)
    signing_name: str  # the SigV4 credential scope's service (logs, monitoring)
    operations: frozenset[str]
    #: X-Amz-Target prefix of its JSON protocol (`Logs_20140328`), None without one.
    target_prefix: str | None
    json_version: str
    #: Its query protocol's API version (`2011-06-15`) and XML namespace, None without one.
    api_version: str | None
    xml_namespace: str | None
    #: Whether it speaks Smithy RPC v2 CBOR (`POST /service/<service>/operation/<operation>`).
    cbor: bool = False

    @classmethod
    def of(cls, name: str) -> ServiceDescription:
        model = service_model(name)
        metadata = model["metadata"]
        protocols = set(metadata.get("protocols") or [metadata["protocol"]])
        return cls(
            name=name,
            signing_name=metadata.get("signingName") or metadata["endpointPrefix"],
            operations=frozenset(model["operations"]),
            target_prefix=metadata.get("targetPrefix") if "json" in protocols else None,
            json_version=metadata.get("jsonVersion", "1.0"),
            api_version=metadata["apiVersion"] if "query" in protocols else None,
            xml_namespace=metadata.get("xmlNamespace") if "query" in protocols else None,
            cbor="smithy-rpc-v2-cbor" in protocols,
        )


def query_parameters(request: Request) -> dict[str, list[str]]:
    """A query-protocol request's parameters: the form body of a POST, else the URL's query string."""
    if request.body and request.headers.get("content-type", "").startswith(FORM_TYPE):
        return parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return parse_qs(request.query, keep_blank_values=True)


class UnservedService:
    """A service app whose every operation is answered with an error in the service's protocol: JSON when the
    request names an X-Amz-Target (or the service speaks no query protocol), query/XML otherwise.

    Made from the service's botocore name alone: its model (2-18 ms to load; ~50 ms for the four on a running
    server) is loaded once, thread-safely, on the first use of `description` or `signing_name`, which the gateway
    defers until a request needs to know which service it is for (`lamina.gateway.dispatch`)."""

    def __init__(self, name: str, max_body: int = 1048576) -> None:
        self.name = name
        self._max_body = max_body
        self._description: ServiceDescription | None = None
        self._loading = threading.Lock()

    @property
    def description(self) -> ServiceDescription:
        description = self._description
        if description is None:
            with self._loading:
                description = self._description
                if description is None:
                    description = self._description = ServiceDescription.of(self.name)
        return description

    @property
    def signing_name(self) -> str:
        return self.description.signing_name

    def _speaks_json(self, request: Request) -> bool:
        return self.description.api_version is None or (
            self.description.target_prefix is not None and "x-amz-target" in request.headers
        )

    def _speaks_cbor(self, request: Request) -> bool:
        return self.description.cbor and request.headers.get("smithy-protocol") == "rpc-v2-cbor"

    def handle(self, request: Request, context: RequestContext) -> Response:
        description = self.description
        if self._speaks_cbor(request):
            operation = context.operation = request.path.rpartition("/operation/")[2]
            if operation in description.operations:
                error = AwsError("UnknownOperationException",
                                 f"Lamina does not serve {description.signing_name}:{operation} yet")
            else:
                error = AwsError("UnknownOperationException", f"Unknown operation: {request.path}")
            return cbor_error(error, context.request_id)
        if self._speaks_json(request):
            prefix, _, operation = request.headers.get("x-amz-target", "").partition(".")
            context.operation = operation
            if prefix == description.target_prefix and operation in description.operations:
                error = AwsError("UnknownOperationException",
                                 f"Lamina does not serve {description.signing_name}:{operation} yet")
            else:
                target = request.headers.get("x-amz-target")
                error = AwsError("UnknownOperationException", f"Unknown operation: {target}")
            return json_error(error, context.request_id, description.json_version)
        action = (query_parameters(request).get("Action") or [""])[-1]
        context.operation = action
        if not action:
            error = AwsError("MissingAction", "The request must contain the parameter Action.")
        elif action in description.operations:
            error = AwsError("InvalidAction", f"Lamina does not serve {description.signing_name}:{action} yet")
        else:
            error = AwsError("InvalidAction",
                             f"Could not find operation {action} for version {description.api_version}")
        return query_error(error, context.request_id, description.xml_namespace)

    def body_limit(self, request: Request) -> int:
        return self._max_body

    def on_error(self, request: Request, error: BaseException) -> Response:
        if isinstance(error, BodyTooLarge):
            failure = AwsError("RequestEntityTooLarge", error.message, 413)
        elif isinstance(error, HttpError):
            failure = AwsError("InvalidRequest" if error.status == 400 else "RequestRefused", error.message,
                               error.status)
        else:
            _log.error("unhandled error for %s %s", request.method, request.path, exc_info=error)
            failure = AwsError("InternalFailure", "An internal error occurred in Lamina.", 500)
        if self._speaks_cbor(request):
            return cbor_error(failure)
        if self._speaks_json(request):
            return json_error(failure, None, self.description.json_version)
        return query_error(failure, None, self.description.xml_namespace)


#: The services the issues ahead put on Lamina's port, by botocore name.
PLANNED_SERVICES = ("logs", "cloudwatch", "iam", "sts")


def unserved_services(names: tuple[str, ...] = PLANNED_SERVICES) -> list[UnservedService]:
    """Their apps, none of whose models is loaded yet."""
    return [UnservedService(name) for name in names]
