"""One constraint pass compiled from a botocore service model: types, required, length, range, pattern, enum.

`ModelValidator(service_model, overrides)` compiles every operation's input shape once (patterns compiled, member
lists in the model's order, constraint texts pre-built), so a request only walks the members it carries. A request
is given as one mapping of the input shape's members, wherever they travel (path, query string, headers, body).

AWS's forms, which the pass reproduces:
- each failing member is one entry, in the model's member order, nested fields named `parent.child` in camel case;
- a string checks length (the upper bound first, then the lower; one of them) and then its pattern or enum, a number
  its range (upper first), each failure its own entry;
- a list checks its length, then its members: when any member fails, one entry names every constraint of the member
  shape, `Member must satisfy constraint: [..., Member must not be null]`; a map does the same for its keys
  (`Map keys must satisfy constraint: [...]`) and values (`Map value must satisfy constraint: [...]`);
- lengths are Java's (UTF-16 code units), patterns are matched in full with ASCII classes, as Java's `matches` does.

Where a server differs from its published model (Lambda's Timeout stops at 900, not the model's 5400), an `Override`
for the shape name, or for one `Operation.Member.Path`, says so; `skip` leaves a member to the service's own rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, NoReturn, Optional, Sequence

from lamina.errors import InvalidRequestContentException, ValidationException, detected, violation

__all__ = ["ModelValidator", "Override", "camel", "raise_if_any", "require_object", "unreadable"]

_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)
_NOT_NULL = "Member must not be null"


@dataclass(frozen=True)
class Override:
    """Where the server differs from the model. Unset fields keep the model's value."""

    skip: bool = False
    min: Optional[float] = None
    max: Optional[float] = None
    pattern: Optional[str] = None
    #: accepted values, printed in this order unless `enum_shown` gives the server's printed order; `()`: no enum
    enum: Optional[tuple[str, ...]] = None
    enum_shown: Optional[tuple[str, ...]] = None
    #: a list's or map's whole constraint text when a member fails, replacing the generated one
    member_constraint: Optional[str] = None
    #: overrides for a list's members
    items: Optional["Override"] = None


def camel(member: str) -> str:
    """AWS names fields in its messages by lower-casing the member's first letter (`MemorySize` -> `memorySize`)."""
    return member[:1].lower() + member[1:]


def raise_if_any(problems: list[str]) -> None:
    if problems:
        raise ValidationException(detected(problems))


def unreadable(path: str, expected: str, value: Any) -> NoReturn:
    """The member could not be bound to the model's type: AWS answers InvalidRequestContentException."""
    raise InvalidRequestContentException(
        f"Could not parse request body into json: expected {expected} for {path}, got {_json_kind(value)}."
    )


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        unreadable("the request body", "an object", body)
    return body


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _java_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _compile_pattern(pattern: str) -> Optional[re.Pattern[str]]:
    """ASCII: Java's \\d and \\s are ASCII-only. A Java-only construct (`\\p{L}`) leaves the pattern unchecked."""
    try:
        return re.compile(pattern, re.ASCII)
    except re.error:
        return None


# -- compiled shapes -----------------------------------------------------------------------------------------------
class _Node:
    """A compiled shape. `types` raises on a JSON type the shape cannot take; `check` appends constraint entries."""

    sensitive = False

    def types(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def check(self, value: Any, field: str, problems: list[str]) -> None:
        raise NotImplementedError

    def fails(self, value: Any) -> bool:
        """Whether `value` breaks any constraint (for list members, map keys and values)."""
        scratch: list[str] = []
        self.check(value, "", scratch)
        return bool(scratch)

    def constraint_texts(self) -> list[str]:
        return []

    def shown(self, value: Any) -> Any:
        return value


class _Skip(_Node):
    def types(self, value: Any, path: str) -> None:
        return None

    def check(self, value: Any, field: str, problems: list[str]) -> None:
        return None


class _String(_Node):
    def __init__(self, low: Optional[float], high: Optional[float], pattern: Optional[str],
                 enum: Optional[tuple[str, ...]], enum_shown: Optional[tuple[str, ...]], sensitive: bool) -> None:
        self.low = None if low is None else int(low)
        self.high = None if high is None else int(high)
        self.pattern = pattern
        self.regex = _compile_pattern(pattern) if pattern is not None else None
        self.enum = frozenset(enum) if enum else None
        self.sensitive = sensitive
        self.high_text = None if self.high is None else f"Member must have length less than or equal to {self.high}"
        self.low_text = None if self.low is None else f"Member must have length greater than or equal to {self.low}"
        self.pattern_text = None if pattern is None else f"Member must satisfy regular expression pattern: {pattern}"
        self.enum_text = None if not enum else f"Member must satisfy enum value set: [{', '.join(enum_shown or enum)}]"
        self.texts = [text for text in (self.high_text, self.low_text, self.pattern_text, self.enum_text) if text]
        # The common case (no length limit to measure, no pattern, no enum) costs nothing.
        self.trivial = self.high is None and not self.low and self.regex is None and self.enum is None

    def types(self, value: Any, path: str) -> None:
        if value is not None and not isinstance(value, str):
            unreadable(path, "a string", value)

    def check(self, value: str, field: str, problems: list[str]) -> None:
        if self.trivial:
            return
        if self.high is not None or self.low:
            size = _java_length(value)
            if self.high is not None and size > self.high:
                problems.append(violation(value, field, self.high_text, sensitive=self.sensitive))
            elif self.low and size < self.low:
                problems.append(violation(value, field, self.low_text, sensitive=self.sensitive))
        if self.regex is not None and self.regex.fullmatch(value) is None:
            problems.append(violation(value, field, self.pattern_text, sensitive=self.sensitive))
        if self.enum is not None and value not in self.enum:
            problems.append(violation(value, field, self.enum_text, sensitive=self.sensitive))

    def constraint_texts(self) -> list[str]:
        return self.texts


class _Number(_Node):
    def __init__(self, kind: str, low: Optional[float], high: Optional[float]) -> None:
        self.floating = kind in ("double", "float")
        self.bits = _INT32 if kind == "integer" else _INT64
        show = (lambda bound: repr(float(bound))) if self.floating else (lambda bound: str(int(bound)))
        self.low, self.high = low, high
        self.low_text = None if low is None else f"Member must have value greater than or equal to {show(low)}"
        self.high_text = None if high is None else f"Member must have value less than or equal to {show(high)}"

    def types(self, value: Any, path: str) -> None:
        if value is None:
            return
        if self.floating:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                unreadable(path, "a number", value)
            return
        if isinstance(value, bool) or not isinstance(value, int):
            unreadable(path, "an integer", value)
        if value not in self.bits:
            width = "32" if self.bits is _INT32 else "64"
            raise InvalidRequestContentException(
                f"Could not parse request body into json: {path} is out of range for a {width}-bit integer."
            )

    def check(self, value: Any, field: str, problems: list[str]) -> None:
        if self.high is not None and value > self.high:
            problems.append(violation(self.shown(value), field, self.high_text))
        elif self.low is not None and value < self.low:
            problems.append(violation(self.shown(value), field, self.low_text))

    def constraint_texts(self) -> list[str]:
        return [text for text in (self.high_text, self.low_text) if text is not None]

    def shown(self, value: Any) -> Any:
        return repr(float(value)) if self.floating and value is not None else value


class _Boolean(_Node):
    def types(self, value: Any, path: str) -> None:
        if value is not None and not isinstance(value, bool):
            unreadable(path, "a boolean", value)

    def check(self, value: Any, field: str, problems: list[str]) -> None:
        return None


class _List(_Node):
    def __init__(self, member: _Node, low: Optional[float], high: Optional[float], constraint: Optional[str],
                 sensitive: bool) -> None:
        self.member = member
        self.low = None if low is None else int(low)
        self.high = None if high is None else int(high)
        self.sensitive = sensitive
        self.constraint = constraint or (
            f"Member must satisfy constraint: [{', '.join([*member.constraint_texts(), _NOT_NULL])}]"
        )

    def types(self, value: Any, path: str) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            unreadable(path, "a list", value)
        for index, item in enumerate(value):
            self.member.types(item, f"{path}[{index}]")

    def check(self, value: list[Any], field: str, problems: list[str]) -> None:
        if self.high is not None and len(value) > self.high:
            problems.append(violation(self.shown(value), field, f"Member must have length less than or equal to "
                                                                f"{self.high}", sensitive=self.sensitive))
        elif self.low and len(value) < self.low:
            problems.append(violation(self.shown(value), field, f"Member must have length greater than or equal to "
                                                                f"{self.low}", sensitive=self.sensitive))
        if any(item is None or self.member.fails(item) for item in value):
            problems.append(violation(self.shown(value), field, self.constraint, sensitive=self.sensitive))

    def shown(self, value: Any) -> Any:
        return [self.member.shown(item) for item in value]


class _Map(_Node):
    def __init__(self, key: _Node, value: _Node, sensitive: bool) -> None:
        self.key, self.value = key, value
        self.sensitive = sensitive
        key_texts = key.constraint_texts()
        self.key_constraint = f"Map keys must satisfy constraint: [{', '.join(key_texts)}]" if key_texts else None
        value_texts = ", ".join([*value.constraint_texts(), _NOT_NULL])
        self.value_constraint = f"Map value must satisfy constraint: [{value_texts}]"

    def types(self, value: Any, path: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            unreadable(path, "an object", value)
        for key, item in value.items():
            self.value.types(item, f"{path}.{key}")

    def check(self, value: dict[str, Any], field: str, problems: list[str]) -> None:
        if self.key_constraint is not None and any(self.key.fails(key) for key in value):
            problems.append(violation(self.shown(value), field, self.key_constraint, sensitive=self.sensitive))
        if any(item is None or self.value.fails(item) for item in value.values()):
            problems.append(violation(self.shown(value), field, self.value_constraint, sensitive=self.sensitive))

    def shown(self, value: Any) -> Any:
        return {key: None if item is None else self.value.shown(item) for key, item in value.items()}


class _Structure(_Node):
    def __init__(self) -> None:
        # (member name, field name in messages, compiled shape, required), in the model's order
        self.members: list[tuple[str, str, _Node, bool]] = []

    def types(self, value: Any, path: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            unreadable(path, "an object", value)
        for name, _, node, _ in self.members:
            item = value.get(name)
            if item is not None:
                node.types(item, f"{path}.{name}" if path else name)

    def check(self, value: dict[str, Any], field: str, problems: list[str]) -> None:
        for name, member_field, node, required in self.members:
            item = value.get(name)
            where = f"{field}.{member_field}" if field else member_field
            if item is None:
                if required and not isinstance(node, _Skip):
                    problems.append(violation(None, where, _NOT_NULL))
            else:
                node.check(item, where, problems)


# -- the validator ---------------------------------------------------------------------------------------------
class ModelValidator:
    """Every operation of one service model, compiled once."""

    def __init__(
        self,
        service_model: Any,
        overrides: Mapping[str, Override] | None = None,
        member_order: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """`member_order`: operations whose server lists its errors in another order than the published model
        (members named there come first, in that order; the others follow in the model's order)."""
        self._overrides = dict(overrides or {})
        self._operations: dict[str, _Structure] = {}
        self.service_name: str = service_model.service_name
        for name in service_model.operation_names:
            operation = service_model.operation_model(name)
            root = _Structure()
            if operation.input_shape is not None:
                root = self._compile(operation.input_shape, name, {})  # type: ignore[assignment]
                first = list((member_order or {}).get(name, ()))
                rank = {member: index for index, member in enumerate(first)}
                root.members.sort(key=lambda entry: rank.get(entry[0], len(first)))
            self._operations[name] = root

    @property
    def operations(self) -> list[str]:
        return list(self._operations)

    def check(self, operation: str, members: Mapping[str, Any]) -> None:
        """Types first (the first unreadable member raises), then every constraint at once."""
        self.check_types(operation, members)
        raise_if_any(self.problems(operation, members))

    def check_types(self, operation: str, members: Mapping[str, Any]) -> None:
        """Only the deserialisation pass: InvalidRequestContentException for the first member of a wrong type."""
        self._operations[operation].types(members, "")

    def problems(self, operation: str, members: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        self._operations[operation].check(members, "", problems)  # type: ignore[arg-type]
        return problems

    def member_names(self, operation: str) -> list[str]:
        return [name for name, _, _, _ in self._operations[operation].members]

    def pattern_of(self, operation: str, member: str) -> str:
        """A string member's pattern as the server prints it (override included)."""
        for name, _, node, _ in self._operations[operation].members:
            if name == member and isinstance(node, _String) and node.pattern is not None:
                return node.pattern
        raise KeyError(f"{operation}.{member} has no pattern")

    # -- compilation -------------------------------------------------------------------------------------------------
    def _override(self, shape: Any, path: str) -> Override:
        return self._overrides.get(path) or self._overrides.get(shape.name) or Override()

    def _compile(self, shape: Any, path: str, seen: dict[str, _Node], override: Override | None = None) -> _Node:
        override = override or self._override(shape, path)
        if override.skip:
            return _Skip()
        metadata = shape.metadata
        low = override.min if override.min is not None else metadata.get("min")
        high = override.max if override.max is not None else metadata.get("max")
        sensitive = bool(metadata.get("sensitive"))
        kind = shape.type_name
        if kind == "structure":
            if shape.name in seen:  # recursive shapes: compiled once
                return seen[shape.name]
            node = _Structure()
            seen[shape.name] = node
            required = set(shape.required_members)
            for name, member in shape.members.items():
                compiled = self._compile(member, f"{path}.{name}", seen)
                node.members.append((name, camel(name), compiled, name in required))
            del seen[shape.name]
            return node
        if kind == "list":
            member = self._compile(shape.member, f"{path}.member", seen, override.items)
            return _List(member, low, high, override.member_constraint, sensitive)
        if kind == "map":
            key = self._compile(shape.key, f"{path}.key", seen)
            value = self._compile(shape.value, f"{path}.value", seen)
            return _Map(key, value, sensitive)
        if kind == "string":
            pattern = override.pattern if override.pattern is not None else metadata.get("pattern")
            enum = override.enum if override.enum is not None else tuple(shape.enum or ())
            return _String(low, high, pattern, enum or None, override.enum_shown, sensitive)
        if kind in ("integer", "long", "double", "float"):
            return _Number(kind, low, high)
        if kind == "boolean":
            return _Boolean()
        if kind == "blob":  # base64 text in JSON
            return _String(None, None, None, None, None, sensitive)
        return _Skip()  # timestamp: nothing the pass checks

