"""The event a function URL request becomes: API Gateway's payload format 2.0, as Lambda's front end builds it.

What is recorded (tests/aws-recorded, the echo fixture's cases) and what is inferred, field by field:

- headers: names lower-cased, repeated ones joined with `,` (docs; a native capture shows `one` + `two,three` as
  `one,two,three`), `connection` dropped (recorded: the client's `Connection: keep-alive` is absent) with the other
  hop-by-hop headers (inferred), the front end's own added: `x-amzn-trace-id`, `x-forwarded-for` (the source ip,
  recorded equal to sourceIp), `x-forwarded-proto`, `x-forwarded-port` (recorded present), and on TLS
  `x-amzn-tls-version` / `x-amzn-tls-cipher-suite` (recorded; Lamina serves plain HTTP, so only when the caller
  says it terminated TLS). A client's x-forwarded-proto/-port and x-amzn-tls-* are replaced, a client's
  x-forwarded-for gets the source ip appended, a client's trace header with a Root is kept (inferred: AWS's
  load-balancer behaviour; not observed on a URL). Header order is the arrival order; AWS's is a Java HashMap's.
- cookies: every Cookie header split on `; `; the cookie header also stays in `headers` (two native captures,
  one of them aws-lambda-go's testdata, show both; the docs' claim that it moves out is API Gateway's).
- rawPath is the path as sent; requestContext.http.path is it percent-decoded (recorded: a request to
  `/pa2%25Fth/1` shows path `/pa2%Fth/1`). rawQueryString as sent, queryStringParameters decoded with repeated keys
  joined by `,` (recorded: `multiQuery=foo&multiQuery=%2Fbar` is `foo,/bar`), absent with no query (captures).
- body: text for text/*, application/json, application/javascript and application/xml (recorded: text/plain and
  application/json stay text), base64 for everything else, a missing Content-Type and form posts included
  (recorded: multipart/form-data is base64 although ASCII). Text that is not UTF-8 is sent as base64 (inferred).
  No body when it is empty, isBase64Encoded false (captures, and the validated echo test).
- requestContext: accountId `anonymous` for AuthType NONE (captures), the owner's for AWS_IAM with `authorizer.iam`;
  time like `01/Dec/2026:07:16:32 +0000`, timeEpoch in milliseconds.
"""
from __future__ import annotations

import base64
import functools
import os
import time as _time
from typing import Any, Mapping, Sequence
from urllib.parse import parse_qsl, unquote

from lamina.services.function_urls.ids import url_domain_name

ANONYMOUS = "anonymous"
TEXT_MEDIA_TYPES = frozenset({"application/json", "application/javascript", "application/xml"})
#: Hop-by-hop headers (RFC 9110 7.6.1): a proxy does not forward them. Only `connection` is recorded as dropped.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
                        "trailer"})
#: Headers the front end owns: a client's value never reaches the function.
FRONT_END_OWNED = frozenset({"x-forwarded-proto", "x-forwarded-port", "x-amzn-tls-version",
                             "x-amzn-tls-cipher-suite"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=4)
def request_time(now: float) -> str:
    """requestContext.time: `01/Dec/2026:07:16:32 +0000` (UTC, English month, whatever the locale); cached, since
    every request of one second shares it."""
    moment = _time.gmtime(int(now))
    return (f"{moment.tm_mday:02d}/{_MONTHS[moment.tm_mon - 1]}/{moment.tm_year:04d}:"
            f"{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d} +0000")


def new_trace_id(now: float) -> str:
    """An X-Ray trace header for a request that came without one: `Root=1-<epoch seconds, 8 hex>-<24 hex>`."""
    return f"Root=1-{int(now):08x}-{os.urandom(12).hex()}"


def media_type(content_type: str | None) -> str:
    """`text/html; charset=utf-8` -> `text/html`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_text(content_type: str | None) -> bool:
    """Whether AWS passes a body of this Content-Type as text (else base64)."""
    kind = media_type(content_type)
    return kind.startswith("text/") or kind in TEXT_MEDIA_TYPES


def encode_body(body: bytes, content_type: str | None) -> tuple[str | None, bool]:
    """(event `body`, `isBase64Encoded`): None for an empty body, text for text types, base64 otherwise."""
    if not body:
        return None, False
    if is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def split_target(target: str) -> tuple[str, str]:
    """(raw path, raw query) of a request target: `/a/b?x=1#f` -> (`/a/b`, `x=1`)."""
    target = target.split("#", 1)[0]
    path, _, query = target.partition("?")
    return path or "/", query


def query_parameters(raw_query: str) -> dict[str, str] | None:
    """queryStringParameters: decoded, repeated keys joined with `,` in order; None when there are none."""
    if not raw_query:
        return None
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return {name: ",".join(items) for name, items in values.items()} or None


def _split_host_port(host: str) -> tuple[str, str | None]:
    """(name, port or None) of a Host value, IPv6 literals included."""
    if host.startswith("["):
        end = host.find("]")
        if end != -1 and host[end + 1:end + 2] == ":" and host[end + 2:].isdigit():
            return host[:end + 1], host[end + 2:]
        return host, None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        return name, port
    return host, None


def build_event(
    *,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    url_id: str,
    region: str,
    request_id: str,
    now: float,
    account_id: str = ANONYMOUS,
    domain_name: str | None = None,
    server_port: int | None = None,
    scheme: str = "http",
    protocol: str = "HTTP/1.1",
    authorizer: Mapping[str, Any] | None = None,
    tls_version: str | None = None,
    tls_cipher_suite: str | None = None,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """The payload-format-2.0 event for one request to a function URL.

    `headers` are the request's (name, value) pairs in arrival order; `target` the raw request target (path and
    query); `now` seconds since the epoch; `account_id` the function owner's for AWS_IAM (`authorizer` then holds
    `{"iam": {...}}`), `anonymous` for NONE. `domain_name` defaults to the Host without its port; `server_port`
    (x-forwarded-port) to the Host's port, else the scheme's. `trace_id` replaces a generated trace header.
    """
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in FRONT_END_OWNED:
            continue
        if lower == "cookie":
            cookies.extend(piece for piece in value.split("; ") if piece)
        joined[lower] = f"{joined[lower]},{value}" if lower in joined else value

    host = joined.get("host")
    host_name, host_port = _split_host_port(host) if host else (None, None)
    if tls_version is not None:
        joined["x-amzn-tls-version"] = tls_version
    if tls_cipher_suite is not None:
        joined["x-amzn-tls-cipher-suite"] = tls_cipher_suite
    incoming_trace = joined.pop("x-amzn-trace-id", None)
    if trace_id is None:
        trace_id = incoming_trace if incoming_trace and "Root=1-" in incoming_trace else new_trace_id(now)
    joined["x-amzn-trace-id"] = trace_id
    joined["x-forwarded-proto"] = scheme
    if server_port is None:
        server_port = int(host_port) if host_port else (443 if scheme == "https" else 80)
    joined["x-forwarded-port"] = str(server_port)
    forwarded = joined.pop("x-forwarded-for", None)
    joined["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip

    raw_path, raw_query = split_target(target)
    text, encoded = encode_body(body, joined.get("content-type"))
    event: dict[str, Any] = {"version": "2.0", "routeKey": "$default", "rawPath": raw_path,
                             "rawQueryString": raw_query}
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined
    parameters = query_parameters(raw_query)
    if parameters is not None:
        event["queryStringParameters"] = parameters
    context: dict[str, Any] = {"accountId": account_id, "apiId": url_id}
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    context["domainName"] = domain_name or host_name or url_domain_name(url_id, region)
    context["domainPrefix"] = url_id
    context["http"] = {
        "method": method,
        "path": unquote(raw_path, errors="replace"),
        "protocol": protocol,
        "sourceIp": source_ip,
        "userAgent": joined.get("user-agent", ""),
    }
    context["requestId"] = request_id
    context["routeKey"] = "$default"
    context["stage"] = "$default"
    epoch_ms = int(round(now * 1000))
    context["time"] = request_time(epoch_ms // 1000)
    context["timeEpoch"] = epoch_ms
    event["requestContext"] = context
    if text is not None:
        event["body"] = text
    event["isBase64Encoded"] = encoded
    return event
