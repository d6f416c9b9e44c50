"""The gateway end to end: boto3 clients of the services Lamina will serve on its port (CloudWatch Logs, CloudWatch,
IAM, STS) get their own protocol's error, parsed by botocore into a ClientError with its code, never a Lambda
error or a parse failure; function URL hosts are routed apart; Lambda and Lamina's own endpoints are unchanged."""
from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import client_for


@pytest.mark.parametrize(
    ("service", "call", "code", "operation"),
    [
        ("logs", lambda client: client.describe_log_groups(), "UnknownOperationException", "DescribeLogGroups"),
        ("logs", lambda client: client.filter_log_events(logGroupName="/aws/lambda/x"), "UnknownOperationException",
         "FilterLogEvents"),
        ("sts", lambda client: client.get_caller_identity(), "InvalidAction", "GetCallerIdentity"),
        ("iam", lambda client: client.list_roles(), "InvalidAction", "ListRoles"),
        ("iam", lambda client: client.get_role(RoleName="r"), "InvalidAction", "GetRole"),
        ("cloudwatch", lambda client: client.list_metrics(Namespace="AWS/Lambda"), "UnknownOperationException",
         "ListMetrics"),
    ],
)
def test_unserved_services_get_their_own_protocols_error(lamina, service, call, code, operation) -> None:
    with pytest.raises(ClientError) as raised:
        call(client_for(lamina.endpoint, service))
    error = raised.value.response["Error"]
    assert error["Code"] == code and operation in error["Message"], raised.value.response
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _raw(endpoint: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_an_unknown_function_url_host_is_forbidden_as_on_aws(lamina) -> None:
    host = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost"
    status, _, body = _raw(lamina.endpoint, "GET", "/2015-03-31/functions", {"Host": host})
    assert (status, json.loads(body)) == (403, {"Message": None})


def test_lambda_and_laminas_own_endpoints_still_answer(lamina, lambda_client) -> None:
    assert "Functions" in lambda_client.list_functions()
    status, _, body = _raw(lamina.endpoint, "GET", "/lamina/code-storage", {})
    assert status == 200 and "CodeStorageLimit" in json.loads(body)
    status, _, body = _raw(lamina.endpoint, "GET", "/lamina/async-queue", {})
    assert status == 200 and "Queues" in json.loads(body)
    status, headers, body = _raw(lamina.endpoint, "GET", "/nowhere", {})
    assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")
