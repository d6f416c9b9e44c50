"""Function URL ids, FunctionUrl strings and the Host parser the front door routes by."""
from __future__ import annotations

import re

import pytest

from lamina.services.function_urls.ids import (
    DEFAULT_URL_DOMAIN,
    UrlHost,
    function_url,
    parse_url_host,
    url_domain_name,
)
from lamina.model.function_url import is_url_id, new_url_id

#: The well-formed id of a URL that does not exist, which AWS's parity suite (test_lambda_url_non_existing_url) asks
#: for and AWS answers with its 403: a host of this shape must reach the URL app.
UNKNOWN = "0123456789abcdefghijklmnopqrstuv"


def test_new_ids() -> None:
    ids = {new_url_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[a-z0-9]{32}", url_id) for url_id in ids)
    assert set("".join(ids)) == set("abcdefghijklmnopqrstuvwxyz0123456789")


@pytest.mark.parametrize("value, valid", [
    (UNKNOWN, True), ("a" * 32, True), ("a" * 31, False), ("a" * 33, False), ("A" * 32, False),
    ("a" * 31 + "-", False), ("", False), ("a" * 31 + "\n", False),
])
def test_is_url_id(value: str, valid: bool) -> None:
    assert is_url_id(value) is valid


@pytest.mark.parametrize("host, expected", [
    (f"{UNKNOWN}.lambda-url.us-east-1.localhost", UrlHost(UNKNOWN, "us-east-1")),
    (f"{UNKNOWN}.lambda-url.us-east-1.localhost:9000", UrlHost(UNKNOWN, "us-east-1")),
    (f"{UNKNOWN.upper()}.LAMBDA-URL.EU-CENTRAL-1.LocalHost", UrlHost(UNKNOWN, "eu-central-1")),
    (f"{UNKNOWN}.lambda-url.us-gov-west-1.localhost.", UrlHost(UNKNOWN, "us-gov-west-1")),
    (f" {UNKNOWN}.lambda-url.ap-southeast-7.localhost ", UrlHost(UNKNOWN, "ap-southeast-7")),
    (f"{UNKNOWN}.lambda-url.us-east-1.on.aws", None),
    (f"{UNKNOWN}.lambda-url.us-east-1.notlocalhost", None),
    (f"{UNKNOWN}.lambda-url.us-east-1", None),
    (f"x.{UNKNOWN}.lambda-url.us-east-1.localhost", None),
    (f"{UNKNOWN}.lambda-uri.us-east-1.localhost", None),
    (f"{UNKNOWN[:-1]}.lambda-url.us-east-1.localhost", None),
    (f"{UNKNOWN}.lambda-url.useast1.localhost", None),
    (f"{UNKNOWN}.lambda-url.us-east-1.localhost:port", None),
    (f"{UNKNOWN}.lambda-url..localhost", None),
    ("localhost:9000", None), ("lambda.us-east-1.amazonaws.com", None), ("[::1]:9000", None), ("", None), (None, None),
])
def test_parse_default_domain(host: str | None, expected: UrlHost | None) -> None:
    assert parse_url_host(host) == expected


def test_parse_custom_domain() -> None:
    host = f"{UNKNOWN}.lambda-url.us-west-2.lamina.example.com:443"
    assert parse_url_host(host, "lamina.example.com") == UrlHost(UNKNOWN, "us-west-2")
    assert parse_url_host(host, ".Lamina.Example.Com.") == UrlHost(UNKNOWN, "us-west-2")
    assert parse_url_host(host) is None
    assert parse_url_host(host, "example.com") is None  # `lamina` would be a fourth label
    assert parse_url_host(host, "") is None


def test_function_url() -> None:
    assert DEFAULT_URL_DOMAIN == "localhost"
    assert function_url(UNKNOWN, "us-east-1", port=9000) == f"http://{UNKNOWN}.lambda-url.us-east-1.localhost:9000/"
    assert function_url(UNKNOWN, "eu-west-1", "Lamina.Example.com", scheme="https") == \
        f"https://{UNKNOWN}.lambda-url.eu-west-1.lamina.example.com/"
    assert url_domain_name(UNKNOWN, "us-east-1") == f"{UNKNOWN}.lambda-url.us-east-1.localhost"


def test_round_trip() -> None:
    url_id = new_url_id()
    authority = function_url(url_id, "ca-central-1", "urls.test", port=8443).split("/")[2]
    assert parse_url_host(authority, "urls.test") == UrlHost(url_id, "ca-central-1")
