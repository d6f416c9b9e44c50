"""What list operations share: AWS's list form of a configuration, and MaxItems/Marker paging."""
from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

from lamina.model.function import FunctionConfig
from lamina.errors import validation_error

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 10000
Item = TypeVar("Item")


def listed_configuration(config: FunctionConfig, *, qualified: bool) -> dict[str, Any]:
    """A FunctionConfiguration as lists show it; `qualified`: every ARN ends in its version, $LATEST included."""
    document = config.to_aws_listed()
    if qualified:
        document["FunctionArn"] = config.qualified_arn
    return document


def max_items(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.lstrip("-").isdigit():
        raise validation_error(raw, "maxItems", "Member must be an integer")
    if int(raw) < 1:
        raise validation_error(raw, "maxItems", "Member must have value greater than or equal to 1")
    if int(raw) > MAX_PAGE_SIZE:
        raise validation_error(raw, "maxItems", f"Member must have value less than or equal to {MAX_PAGE_SIZE}")
    return int(raw)


def page(
    items: Sequence[Item], marker_of: Callable[[Item], str], marker: str | None, size: int, order: Callable[[str], Any]
) -> tuple[list[Item], str | None]:
    """The items after `marker` (an earlier page's NextMarker), at most `size`, and the next page's marker.

    `items` are sorted by `order` of their marker, so a marker whose item was deleted meanwhile still finds its place.
    """
    start = 0
    if marker:
        after = order(marker)
        start = sum(1 for item in items if order(marker_of(item)) <= after)
    chosen = list(items[start : start + size])
    more = start + size < len(items)
    return chosen, (marker_of(chosen[-1]) if more and chosen else None)
