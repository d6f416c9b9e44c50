"""Name / ARN / qualifier parsing: every accepted form, and AWS's messages for the rest."""
from __future__ import annotations

import pytest

from lamina.model.arns import FunctionRef, function_arn, is_version, merge_qualifier, parse_function_name
from lamina.errors import InvalidParameterValueException, ValidationException


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("my-fn", FunctionRef("my-fn")),
        ("my-fn:prod", FunctionRef("my-fn", "prod")),
        ("my-fn:$LATEST", FunctionRef("my-fn", "$LATEST")),
        ("123456789012:function:my-fn", FunctionRef("my-fn", account="123456789012")),
        ("123456789012:function:my-fn:7", FunctionRef("my-fn", "7", account="123456789012")),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:my_fn",
            FunctionRef("my_fn", region="eu-west-1", account="123456789012"),
        ),
        (
            "arn:aws:lambda:us-gov-west-1:123456789012:function:f:live",
            FunctionRef("f", "live", region="us-gov-west-1", account="123456789012"),
        ),
    ],
)
def test_accepted_forms(raw: str, expected: FunctionRef) -> None:
    assert parse_function_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["invalid:function:name", "arn:aws:lambda:us-east-1:123400000000@function:myfn", "my fn", "a:b:c:d", "123456789012:my-fn"],
)
def test_rejected_forms_quote_the_model_pattern(raw: str) -> None:
    with pytest.raises(ValidationException) as caught:
        parse_function_name(raw)
    assert caught.value.message.startswith(f"1 validation error detected: Value '{raw}' at 'functionName'")
    assert "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?" in caught.value.message


def test_length_limits() -> None:
    with pytest.raises(ValidationException) as caught:
        parse_function_name("a" * 65)
    assert caught.value.message.endswith("Member must have length less than or equal to 64")
    with pytest.raises(InvalidParameterValueException):
        parse_function_name("a" * 65, creating=True)
    long_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + "b" * 64 + ":" + "q" * 40
    with pytest.raises(ValidationException) as caught:
        parse_function_name(long_arn, max_length=140)
    assert caught.value.message.endswith("Member must have length less than or equal to 140")
    with pytest.raises(ValidationException) as caught:
        parse_function_name(None)
    assert caught.value.message.endswith("Member must not be null")


def test_qualifier_merging() -> None:
    assert merge_qualifier(FunctionRef("f"), None) is None
    assert merge_qualifier(FunctionRef("f"), "3") == "3"
    assert merge_qualifier(FunctionRef("f", "3"), None) == "3"
    assert merge_qualifier(FunctionRef("f", "3"), "3") == "3"
    with pytest.raises(InvalidParameterValueException) as caught:
        merge_qualifier(FunctionRef("f", "$LATEST"), "1")
    assert caught.value.message == "The derived qualifier from the function name does not match the specified qualifier."
    with pytest.raises(ValidationException):
        merge_qualifier(FunctionRef("f"), "bad?qualifier")


def test_arn_building_and_version_detection() -> None:
    assert function_arn("us-east-1", "000000000000", "f") == "arn:aws:lambda:us-east-1:000000000000:function:f"
    assert function_arn("us-east-1", "000000000000", "f", "live").endswith(":function:f:live")
    assert is_version("$LATEST") and is_version("12")
    assert not is_version("live") and not is_version("1a")
