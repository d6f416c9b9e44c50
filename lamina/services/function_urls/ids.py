"""Function URL ids and hosts: every URL is its own origin, `<id>.lambda-url.<region>.<url-domain>`.

The ids themselves (32 characters of `[a-z0-9]`) are made in `lamina.model.function_url`. With
`--url-domain localhost` (the default) curl and browsers resolve every such name to loopback (RFC 6761).
"""
from __future__ import annotations

import functools
import re
from typing import NamedTuple

from lamina.model.function_url import is_url_id

DEFAULT_URL_DOMAIN = "localhost"
URL_MARK = "lambda-url"
#: us-east-1, us-gov-west-1, eu-central-2, cn-north-1, us-isob-east-1...
_REGION = re.compile(r"[a-z]{2,}(?:-[a-z]+)+-\d+")


class UrlHost(NamedTuple):
    """What a function-URL Host names: the url id and the region."""

    url_id: str
    region: str


def url_domain_name(url_id: str, region: str, url_domain: str = DEFAULT_URL_DOMAIN) -> str:
    """The URL's host name (requestContext.domainName): `<id>.lambda-url.<region>.<url-domain>`."""
    return f"{url_id}.{URL_MARK}.{region}.{url_domain.strip('.').lower()}"


def function_url(url_id: str, region: str, url_domain: str = DEFAULT_URL_DOMAIN, port: int | None = None,
                 scheme: str = "http") -> str:
    """The FunctionUrl the API answers: `http://<id>.lambda-url.<region>.<url-domain>:<port>/` (AWS ends it in `/`)."""
    authority = url_domain_name(url_id, region, url_domain)
    if port is not None:
        authority = f"{authority}:{port}"
    return f"{scheme}://{authority}/"


@functools.lru_cache(maxsize=4096)
def parse_url_host(host: str | None, url_domain: str = DEFAULT_URL_DOMAIN) -> UrlHost | None:
    """(url id, region) of a Host header `<id>.lambda-url.<region>.<url-domain>[:port]`, None for anything else.
    Cached (bounded): a URL's clients send the same Host again and again.

    Host names are case-insensitive (and may end in the root's `.`); the id must look like one of AWS's, so a host
    that merely contains `.lambda-url.` is not taken for a URL.
    """
    if not host:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return None
    base, colon, port = name.rpartition(":")
    if colon:
        if not port.isdigit():
            return None
        name = base
    if name.endswith("."):  # the DNS root
        name = name[:-1]
    suffix = "." + url_domain.strip(".").lower()
    if not url_domain.strip(".") or not name.endswith(suffix):
        return None
    labels = name[: -len(suffix)].split(".")
    if len(labels) != 3 or labels[1] != URL_MARK:
        return None
    url_id, _, region = labels
    if not is_url_id(url_id) or _REGION.fullmatch(region) is None:
        return None
    return UrlHost(url_id, region)
