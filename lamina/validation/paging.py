"""The one Marker/MaxItems implementation list operations share: the page size from the query, and the page."""
from __future__ import annotations

import re
from typing import Any, Callable, Optional, Sequence, TypeVar

from lamina.errors import ValidationException, detected, violation
from lamina.validation.constraints import ModelValidator, camel

__all__ = ["DEFAULT_PAGE_SIZE", "page", "page_size", "query_integer"]

DEFAULT_PAGE_SIZE = 50
_INTEGER = re.compile(r"-?[0-9]+")
Item = TypeVar("Item")


def query_integer(raw: Optional[str], member: str) -> Optional[int]:
    """A query-string integer (`MaxItems=10`): text that is not one is refused before any constraint is checked."""
    if raw is None:
        return None
    if _INTEGER.fullmatch(raw) is None:
        raise ValidationException(detected([violation(raw, camel(member), "Member must be an integer")]))
    return int(raw)


def page_size(validator: ModelValidator, operation: str, raw: Optional[str], **members: Any) -> int:
    """MaxItems as given, checked against the operation's model bounds together with the operation's other query
    `members` (one message, in the model's order), or the default page size."""
    value = query_integer(raw, "MaxItems")
    validator.check(operation, {**members, "MaxItems": value})
    return DEFAULT_PAGE_SIZE if value is None else value


def page(
    items: Sequence[Item],
    marker_of: Callable[[Item], str],
    marker: Optional[str],
    size: int,
    order: Callable[[str], Any] = str,
) -> tuple[list[Item], Optional[str]]:
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
