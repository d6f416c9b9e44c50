"""AWS Lambda service errors, raised by any layer and serialised by the API front.

Each class carries the exact code and HTTP status AWS uses; the message is the
caller's job, copied from AWS's recorded responses (`shared/reference/aws-recorded`).
"""
from __future__ import annotations

from typing import Any, Sequence


class LambdaError(Exception):
    """An error the caller sees as `x-amzn-ErrorType: <code>` with a JSON body."""

    code = "ServiceException"
    status = 500
    #: AWS spells the message key `Message` on some exceptions and `message` on others.
    message_key = "message"
    #: `Type: User|Service` is present on modelled Lambda exceptions, absent on ValidationException.
    include_type = True

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.include_type:
            document["Type"] = "User" if self.status < 500 else "Service"
        document[self.message_key] = self.message
        document.update(self.extra)
        return document


class InvalidParameterValueException(LambdaError):
    code, status = "InvalidParameterValueException", 400


class ValidationException(LambdaError):
    code, status = "ValidationException", 400
    include_type = False


class ResourceNotFoundException(LambdaError):
    code, status, message_key = "ResourceNotFoundException", 404, "Message"


class ResourceConflictException(LambdaError):
    code, status = "ResourceConflictException", 409


class PreconditionFailedException(LambdaError):
    code, status = "PreconditionFailedException", 412


class RequestTooLargeException(LambdaError):
    code, status = "RequestTooLargeException", 413


class RequestEntityTooLargeException(LambdaError):
    """A deployment package over the zipped limit (recorded from AWS: no `Type` in the body)."""

    code, status, message_key = "RequestEntityTooLargeException", 413, "Message"
    include_type = False


class UnsupportedMediaTypeException(LambdaError):
    code, status = "UnsupportedMediaTypeException", 415


class InvalidRequestContentException(LambdaError):
    code, status = "InvalidRequestContentException", 400


class TooManyRequestsException(LambdaError):
    code, status = "TooManyRequestsException", 429


class ProvisionedConcurrencyConfigNotFoundException(LambdaError):
    code, status = "ProvisionedConcurrencyConfigNotFoundException", 404


class CodeStorageExceededException(LambdaError):
    code, status = "CodeStorageExceededException", 400


class PolicyLengthExceededException(LambdaError):
    code, status = "PolicyLengthExceededException", 400


class ServiceException(LambdaError):
    code, status, message_key = "ServiceException", 500, "Message"


class PlatformError(ServiceException):
    """Lamina's platform failed, not the function and not a limit: a sandbox that could not start, a full disk, a
    runtime gone from the host. A synchronous caller gets AWS's 500 ServiceException; the asynchronous dispatcher
    retries the event later (not an attempt). Any other exception escaping an invocation is a bug, and is not
    retried (asyncinvoke/retry_policy.py)."""


class UnknownOperationException(LambdaError):
    code, status, message_key = "UnknownOperationException", 404, "Message"
    include_type = False


# Refusals of the HTTP front, before any operation runs (not in Lambda's model; the status is HTTP's own).
class RequestTimeoutException(LambdaError):
    code, status = "RequestTimeoutException", 408


class RequestURITooLongException(LambdaError):
    code, status = "RequestURITooLongException", 414


class RequestHeaderFieldsTooLargeException(LambdaError):
    code, status = "RequestHeaderFieldsTooLargeException", 431


# -- AWS's validation message, built here only: `N validation error(s) detected: Value 'x' at 'field' failed to ...`
def validation_error(value: Any, field: str, constraint: str) -> ValidationException:
    """AWS's single-field constraint message, e.g. for a bad enum or pattern."""
    return ValidationException(detected([violation(value, field, constraint)]))


def violation(value: Any, field: str, constraint: str, *, sensitive: bool = False) -> str:
    """One entry; a sensitive member (environment variables) is printed without its value: `Value at 'x'`."""
    if sensitive:
        shown = ""
    elif value is None:
        shown = "null "
    else:
        shown = f"'{java_text(value)}' "
    return f"Value {shown}at '{field}' failed to satisfy constraint: {constraint}"


def detected(problems: Sequence[str]) -> str:
    """The whole message: the count, then every entry joined with `; `, in the order found."""
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(problems)}"


def java_text(value: Any) -> str:
    """How AWS's Java front end prints a value: lists as `[a, b]`, maps as `{k=v}`, booleans in lower case."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(java_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_text(key)}={java_text(item)}" for key, item in value.items()) + "}"
    return str(value)
