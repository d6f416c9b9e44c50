"""The request context: created once per request by the gateway and passed down to the operation's handler."""
from __future__ import annotations

import os

_VARIANT = "89ab"


def new_request_id() -> str:
    """A random (version 4) UUID in its text form, as AWS's request ids are; a third of uuid.uuid4()'s cost."""
    digits = os.urandom(16).hex()
    return (f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[int(digits[16], 16) & 3]}{digits[17:20]}-"
            f"{digits[20:]}")


class RequestContext:
    """Who asks what of which service. `principal` stays None until authentication lands; `operation` is the AWS
    operation name (the service model's), set once the service app has matched the request."""

    __slots__ = ("request_id", "account", "region", "principal", "service", "operation")

    def __init__(
        self,
        account: str,
        region: str,
        service: str,
        operation: str = "",
        principal: object | None = None,
        request_id: str | None = None,
    ) -> None:
        self.request_id = request_id or new_request_id()
        self.account = account
        self.region = region
        self.principal = principal
        self.service = service
        self.operation = operation

    def __repr__(self) -> str:
        return (f"RequestContext({self.service}:{self.operation or '?'} region={self.region} account={self.account} "
                f"request_id={self.request_id})")
