"""What Lambda's list operations share: AWS's list form of a configuration, and MaxItems/Marker paging (the one
implementation, `lamina.validation.paging`, bound to Lambda's model)."""
from __future__ import annotations

from typing import Any

from lamina.control.validation import LAMBDA
from lamina.model.function import FunctionConfig
from lamina.validation.paging import page, page_size

__all__ = ["listed_configuration", "max_items", "page"]


def listed_configuration(config: FunctionConfig, *, qualified: bool) -> dict[str, Any]:
    """A FunctionConfiguration as lists show it; `qualified`: every ARN ends in its version, $LATEST included."""
    document = config.to_aws_listed()
    if qualified:
        document["FunctionArn"] = config.qualified_arn
    return document


def max_items(raw: str | None, operation: str = "ListFunctions", **members: Any) -> int:
    """The page size of a Lambda list operation: MaxItems (with the operation's other query `members`) checked
    against the model, or the default."""
    return page_size(LAMBDA, operation, raw, **members)
