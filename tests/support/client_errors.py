"""The AWS error a boto3 call answered with, in the shapes the end-to-end tests compare against."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of the ClientError a `pytest.raises` caught."""
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def error_response(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Make a call that must fail with a ClientError, and return the whole parsed error response."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response


def call_error(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, str, str]:
    """Make a call that must fail with a ClientError, and return its (HTTP status, error code, message)."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return error_of(caught)
