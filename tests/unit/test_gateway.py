"""The gateway (lamina/gateway/): dispatch by Host, SigV4 signing name, X-Amz-Target and Action; each protocol's error
shape, read back by botocore's own parsers; the Lambda route table built from botocore's model."""
from __future__ import annotations

import inspect
import json
import threading
from typing import Any

import botocore.parsers
import botocore.session
import pytest

from lamina.errors import ResourceNotFoundException
from lamina.gateway.context import RequestContext
from lamina.gateway.dispatch import Gateway, UnknownFunctionUrls, signing_scope
from lamina.gateway.protocols import AwsError, cbor_error, json_error, query_error
from lamina.gateway.unserved import unserved_services
from lamina.http.messages import Request, Response

AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc")
FORM = "application/x-www-form-urlencoded; charset=utf-8"


class _FakeLambda:
    signing_name = "lambda"

    def __init__(self) -> None:
        self.contexts: list[RequestContext] = []

    def handle(self, request: Request, context: RequestContext) -> Response:
        self.contexts.append(context)
        return Response(200, b"lambda")

    def body_limit(self, request: Request) -> int:
        return 123

    def on_error(self, request: Request, error: BaseException) -> Response:
        return Response(500, b"lambda error")


@pytest.fixture(scope="module")
def gateway() -> Gateway:
    return Gateway(_FakeLambda(), unserved_services(), account="111122223333", default_region="eu-west-1")


def _request(path: str = "/", *, method: str = "POST", query: str = "", body: bytes = b"", **headers: str) -> Request:
    return Request(method, path, query, {name.replace("_", "-").lower(): value for name, value in headers.items()},
                   body)


def _signed(service: str, region: str = "us-west-2", **kwargs: Any) -> Request:
    return _request(**kwargs, authorization=AUTH.format(region=region, service=service))


def _served_by(gateway: Gateway, request: Request) -> tuple[str, str]:
    app, region = gateway.dispatch(request)
    return app.signing_name, region


def test_dispatch_by_signing_name_gives_the_service_and_region(gateway: Gateway) -> None:
    assert _served_by(gateway, _signed("logs")) == ("logs", "us-west-2")
    assert _served_by(gateway, _signed("sts")) == ("sts", "us-west-2")
    assert _served_by(gateway, _signed("iam", "us-east-1")) == ("iam", "us-east-1")
    assert _served_by(gateway, _signed("monitoring")) == ("monitoring", "us-west-2")
    assert _served_by(gateway, _signed("lambda", path="/2015-03-31/functions")) == ("lambda", "us-west-2")
    # A service Lamina knows nothing of, on a REST path: Lambda's app answers (its unknown-operation error).
    assert _served_by(gateway, _signed("s3", path="/bucket/key")) == ("lambda", "us-west-2")


def test_dispatch_by_presigned_credential(gateway: Gateway) -> None:
    query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261201%2Fap-south-1%2Fsts%2Faws4_request"
    request = _request(method="GET", query=query + "&Action=GetCallerIdentity")
    assert signing_scope(request) == ("ap-south-1", "sts")
    assert _served_by(gateway, request) == ("sts", "ap-south-1")


def test_dispatch_by_target_and_action_for_unsigned_requests(gateway: Gateway) -> None:
    assert _served_by(gateway, _request(x_amz_target="Logs_20140328.DescribeLogGroups")) == ("logs", "eu-west-1")
    assert _served_by(gateway, _request(x_amz_target="GraniteServiceVersion20100801.ListMetrics")) == (
        "monitoring", "eu-west-1")
    sts = _request(body=b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15", content_type=FORM)
    assert _served_by(gateway, sts) == ("sts", "eu-west-1")
    assert _served_by(gateway, _request(body=b"Action=ListUsers", content_type=FORM)) == ("iam", "eu-west-1")
    assert _served_by(gateway, _request(method="GET", query="Action=ListMetrics&Version=2010-08-01")) == (
        "monitoring", "eu-west-1")
    # No target, no action: Lambda, also for a form body to a Lambda path (curl -d's default content type).
    assert _served_by(gateway, _request(body=b"Action=ListUsers", content_type=FORM, path="/2015-03-31/functions")) == (
        "lambda", "eu-west-1")
    assert _served_by(gateway, _request(method="GET", path="/lamina/code-storage")) == ("lambda", "eu-west-1")


def test_function_url_hosts_get_the_url_app_and_an_unknown_one_403(gateway: Gateway) -> None:
    request = _request(method="GET", path="/anything",
                       host="abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost:9000",
                       authorization=AUTH.format(region="us-east-1", service="lambda"))
    assert isinstance(gateway.dispatch(request)[0], UnknownFunctionUrls)
    response = gateway.handle(request)
    assert isinstance(response, Response)
    assert (response.status, json.loads(response.body)) == (403, {"Message": None})


def test_the_context_is_made_once_with_account_region_and_service(gateway: Gateway) -> None:
    lambda_app = gateway.dispatch(_request(path="/x"))[0]
    assert isinstance(lambda_app, _FakeLambda)
    gateway.handle(_signed("lambda", "sa-east-1", path="/2015-03-31/functions"))
    context = lambda_app.contexts[-1]
    assert (context.account, context.region, context.service, context.principal) == (
        "111122223333", "sa-east-1", "lambda", None)
    assert len(context.request_id) == 36
    assert gateway.body_limit(_request(path="/2015-03-31/functions")) == 123


def _parse(protocol: str, response: Response, service: str) -> dict[str, Any]:
    """What botocore makes of an error response: the dict its ClientError carries."""
    model = botocore.session.get_session().get_service_model(service)
    operation = model.operation_model(model.operation_names[0])
    parsed = botocore.parsers.create_parser(protocol).parse(
        {"status_code": response.status, "headers": {name.lower(): value for name, value in response.headers},
         "body": response.body},
        operation.output_shape,
    )
    return parsed


@pytest.mark.parametrize(
    ("service", "protocol", "request_", "code", "operation"),
    [
        ("logs", "json", _signed("logs", x_amz_target="Logs_20140328.DescribeLogGroups"), "UnknownOperationException",
         "DescribeLogGroups"),
        ("logs", "json", _signed("logs", x_amz_target="Logs_20140328.Nope"), "UnknownOperationException", "Nope"),
        ("sts", "query", _signed("sts", body=b"Action=GetCallerIdentity&Version=2011-06-15", content_type=FORM),
         "InvalidAction", "GetCallerIdentity"),
        ("iam", "query", _signed("iam", body=b"Action=Nope&Version=2010-05-08", content_type=FORM), "InvalidAction",
         "Nope"),
        ("cloudwatch", "smithy-rpc-v2-cbor",
         _signed("monitoring", path="/service/GraniteServiceVersion20100801/operation/ListMetrics",
                 smithy_protocol="rpc-v2-cbor"), "UnknownOperationException", "ListMetrics"),
        ("cloudwatch", "json",
         _signed("monitoring", x_amz_target="GraniteServiceVersion20100801.ListMetrics"), "UnknownOperationException",
         "ListMetrics"),
        ("cloudwatch", "query",
         _signed("monitoring", body=b"Action=ListMetrics&Version=2010-08-01", content_type=FORM), "InvalidAction",
         "ListMetrics"),
    ],
)
def test_unserved_services_answer_in_their_own_protocol(gateway, service, protocol, request_, code, operation) -> None:
    response = gateway.handle(request_)
    assert isinstance(response, Response) and response.status == 400
    error = _parse(protocol, response, service)["Error"]
    assert error["Code"] == code and operation in error["Message"], error


def test_each_protocols_error_shape() -> None:
    error = AwsError("NoSuchEntity", "The role with name x cannot be found.", 404)
    body = json.loads(json_error(error, "rid").body)
    assert body == {"__type": "NoSuchEntity", "message": "The role with name x cannot be found."}
    assert dict(json_error(error, "rid").headers)["x-amzn-ErrorType"] == "NoSuchEntity"
    assert dict(json_error(error, "rid").headers)["Content-Type"] == "application/x-amz-json-1.1"
    xml = query_error(AwsError("Throttling", "a < b & c", 400), "rid").body.decode()
    assert xml == ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>a &lt; b &amp; c</Message>"
                   "</Error><RequestId>rid</RequestId></ErrorResponse>")
    assert b"<Type>Receiver</Type>" in query_error(AwsError("ServiceFailure", "m", 500)).body
    parsed = _parse("query", query_error(error, "rid", "https://iam.amazonaws.com/doc/2010-05-08/"), "iam")
    assert parsed["Error"]["Code"] == "NoSuchEntity" and parsed["ResponseMetadata"]["RequestId"] == "rid"
    assert _parse("json", json_error(error), "logs")["Error"]["Code"] == "NoSuchEntity"
    assert _parse("smithy-rpc-v2-cbor", cbor_error(error), "cloudwatch")["Error"]["Code"] == "NoSuchEntity"


def test_lambdas_rest_json_error_shape_is_unchanged() -> None:
    from lamina.services.lambda_.wire import error_response

    response = error_response(ResourceNotFoundException("Function not found: arn:x"), "rid")
    assert json.loads(response.body) == {"Type": "User", "Message": "Function not found: arn:x"}
    assert dict(response.headers)["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert _parse("rest-json", response, "lambda")["Error"]["Code"] == "ResourceNotFoundException"


# -- the Lambda route table ------------------------------------------------------------------------------------------
class _Unused:
    """Stands in for the operations' services: routing needs only the handlers."""

    def __getattr__(self, name: str) -> _Unused:
        return self


def _lambda_router():
    from lamina.services.lambda_.aliases import AliasOperations
    from lamina.services.lambda_.async_invoke import AsyncInvokeOperations
    from lamina.services.lambda_.code import CodeDownloads
    from lamina.services.lambda_.concurrency import ConcurrencyOperations
    from lamina.services.lambda_.functions import FunctionOperations
    from lamina.services.lambda_.invoke import InvokeOperations
    from lamina.services.lambda_.layers import LayerOperations
    from lamina.services.lambda_.permissions import PermissionOperations
    from lamina.services.lambda_.router import Router
    from lamina.services.lambda_.tags import TagOperations
    from lamina.services.lambda_.versions import VersionOperations

    router = Router()
    for group in (InvokeOperations, AsyncInvokeOperations, FunctionOperations, TagOperations, PermissionOperations,
                  ConcurrencyOperations, LayerOperations, VersionOperations, AliasOperations, CodeDownloads):
        group(*[_Unused()] * len(inspect.signature(group).parameters)).register(router)  # type: ignore[arg-type]
    return router


def test_every_served_operation_has_botocores_method_uri_and_status() -> None:
    router = _lambda_router()
    model = botocore.session.get_session().get_service_model("lambda")
    served = [route for route in router.routes if not route.template.startswith("/lamina/")]
    assert len(served) >= 44
    for route in served:
        http = model.operation_model(route.operation).http
        uri = route.template + ("?" + "&".join(f"{k}={v}" for k, v in route.required_query) if route.required_query
                                else "")
        assert (route.method, uri, route.status) == (http["method"], http["requestUri"], http["responseCode"])
        # ... and a request on it, with the path filled in, is matched to that operation.
        path = route.template.replace("{", "").replace("}", "")
        matched = router.match(route.method, path, "&".join(f"{k}={v}" for k, v in route.required_query))
        assert matched and matched[0].operation == route.operation, route
    assert {route.template for route in router.routes if route.template.startswith("/lamina/")} == {
        "/lamina/async-queue", "/lamina/code/{Blob}", "/lamina/code-storage"}


def test_invoke_takes_the_fast_path_and_query_discriminated_operations_match() -> None:
    router = _lambda_router()
    matched = router.match("POST", "/2015-03-31/functions/my-fn/invocations")
    assert matched and matched[0].operation == "Invoke" and matched[1] == {"FunctionName": "my-fn"}
    assert router.match("GET", "/2015-03-31/functions/my-fn/invocations") is False
    listed = router.match("GET", "/2019-09-30/functions/f/provisioned-concurrency", "List=ALL&MaxItems=5")
    got = router.match("GET", "/2019-09-30/functions/f/provisioned-concurrency", "Qualifier=1")
    assert listed and listed[0].operation == "ListProvisionedConcurrencyConfigs"
    assert got and got[0].operation == "GetProvisionedConcurrencyConfig"
    by_arn = router.match("GET", "/2018-10-31/layers", "find=LayerVersion&Arn=arn")
    layers = router.match("GET", "/2018-10-31/layers", "")
    assert by_arn and by_arn[0].operation == "GetLayerVersionByArn"
    assert layers and layers[0].operation == "ListLayers"
    assert router.match("GET", "/nowhere") is None


# -- start-up: the unserved services' models are loaded by the first request that needs them -------------------------
@pytest.fixture
def model_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The botocore models the unserved services load, by name, in order."""
    from lamina.gateway import unserved

    loads: list[str] = []
    real = unserved.service_model

    def counted(name: str) -> dict[str, Any]:
        loads.append(name)
        return real(name)

    monkeypatch.setattr(unserved, "service_model", counted)
    return loads


def test_constructing_the_gateway_loads_no_unserved_model(model_loads: list[str]) -> None:
    gateway = Gateway(_FakeLambda(), unserved_services(), account="111122223333", default_region="eu-west-1")
    assert model_loads == []
    # Lambda's own requests, signed or not, and Lamina's endpoints, do not need them either.
    assert _served_by(gateway, _signed("lambda", path="/2015-03-31/functions")) == ("lambda", "us-west-2")
    assert _served_by(gateway, _request(method="GET", path="/lamina/code-storage")) == ("lambda", "eu-west-1")
    assert _served_by(gateway, _request(body=b"{}", content_type="application/json")) == ("lambda", "eu-west-1")
    assert model_loads == []
    # The first CloudWatch Logs request loads them, once, and gets its AWS-shaped "not served" answer.
    request = _request(x_amz_target="Logs_20140328.DescribeLogGroups")
    response = gateway.handle(request)
    assert sorted(model_loads) == sorted(["logs", "cloudwatch", "iam", "sts"])
    assert isinstance(response, Response) and response.status == 400
    error = _parse("json", response, "logs")["Error"]
    assert error["Code"] == "UnknownOperationException" and "logs:DescribeLogGroups" in error["Message"], error
    again = gateway.handle(_signed("sts", body=b"Action=GetCallerIdentity&Version=2011-06-15", content_type=FORM))
    assert isinstance(again, Response) and _parse("query", again, "sts")["Error"]["Code"] == "InvalidAction"
    assert len(model_loads) == 4


def test_concurrent_first_requests_load_each_model_once(model_loads: list[str]) -> None:
    gateway = Gateway(_FakeLambda(), unserved_services(), account="111122223333", default_region="eu-west-1")
    start = threading.Barrier(8)
    served: list[tuple[str, str]] = []

    def first_request() -> None:
        start.wait()
        served.append(_served_by(gateway, _signed("monitoring")))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert served == [("monitoring", "us-west-2")] * 8
    assert sorted(model_loads) == sorted(["logs", "cloudwatch", "iam", "sts"])
