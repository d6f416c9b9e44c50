"""How AWS's Java function-URL front end reads and re-writes JSON, so Lamina's bytes are the same as AWS's.

A result without `statusCode` is not sent as the function wrote it: the front end parses it and serialises it again
the way the json-simple library does (recorded: Python's `{"hello": "world"}`, 18 bytes from the runtime, arrives
as the 17 bytes `{"hello":"world"}`). A native capture of a larger object shows what that implies: no spaces, `/`
escaped as `\\/`, and the members of every object in the iteration order of a `java.util.HashMap` (the bucket of the
key's String hash, then insertion order), not in the order the function wrote them. Numbers follow json-simple too:
integers are Java longs, anything with a fraction or exponent a Java double, printed by `Double.toString`.

Non-string header values of a `statusCode` result go through another path that prints them as Java's `toString`
does (`{bad=true}`, recorded in the same capture): `java_text`.
"""
from __future__ import annotations

import functools
import json
import math
from decimal import Decimal
from typing import Any

_LONG_MIN, _LONG_MAX = -(2 ** 63), 2 ** 63 - 1
#: java.util.HashMap: first table size, load factor 3/4, and the chain length that makes it grow (treeifyBin on a
#: table smaller than 64) rather than turn the chain into a tree.
_INITIAL_CAPACITY = 16
_TREEIFY_THRESHOLD = 8
_MIN_TREEIFY_CAPACITY = 64


class JavaJsonError(ValueError):
    """The payload is not JSON json-simple reads (NaN, Infinity, an integer outside a Java long, bad syntax)."""


def _refuse_constant(name: str) -> Any:
    raise JavaJsonError(f"not JSON: {name}")


def _long(text: str) -> int:
    value = int(text)
    if not _LONG_MIN <= value <= _LONG_MAX:  # json-simple's Long.valueOf throws: the front end cannot map it
        raise JavaJsonError(f"integer out of a Java long's range: {text}")
    return value


#: One decoder for every result (json.loads with hooks would build a new one per call).
_DECODER = json.JSONDecoder(parse_int=_long, parse_constant=_refuse_constant)


def loads(payload: bytes | str) -> Any:
    """Parse a function's result as json-simple does; objects keep the order their members were written in."""
    try:
        return _DECODER.decode(payload.decode() if isinstance(payload, bytes) else payload)
    except JavaJsonError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise JavaJsonError(str(error)) from error


@functools.lru_cache(maxsize=4096)
def string_hash(text: str) -> int:
    """Java's String.hashCode (over UTF-16 code units, in 32 bits); cached, since results repeat their keys."""
    value = 0
    data = text.encode("utf-16-be", "surrogatepass")
    for index in range(0, len(data), 2):
        value = (31 * value + ((data[index] << 8) | data[index + 1])) & 0xFFFFFFFF
    return value


def _spread(hash_code: int) -> int:
    return hash_code ^ (hash_code >> 16)


def hashmap_order(keys: list[str]) -> list[str]:
    """The iteration order of a java.util.HashMap the keys were put into in this order (cached per key list: a
    function answers the same shape again and again)."""
    return list(_hashmap_order(tuple(keys)))


@functools.lru_cache(maxsize=1024)
def _hashmap_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The iteration order of a java.util.HashMap the keys were put into in this order (no duplicates).

    A chain keeps insertion order and a resize splits chains without reordering them, so the order is: bucket index
    in the final table, then insertion. The table doubles past 3/4 full, and also when a chain reaches 9 entries
    while the table is below 64. (A chain of 9 in a table of 64 or more becomes a tree, whose later insertions are
    not appended at the end; that needs 9 colliding keys among dozens and is not modelled.)
    """
    capacity = _INITIAL_CAPACITY
    spread = [_spread(string_hash(key)) for key in keys]
    chains: dict[int, int] = {}
    for position, key_hash in enumerate(spread):
        index = key_hash & (capacity - 1)
        before = chains.get(index, 0)
        chains[index] = before + 1
        grow = before >= _TREEIFY_THRESHOLD and capacity < _MIN_TREEIFY_CAPACITY
        if position + 1 > capacity * 3 // 4:
            grow = True
        if grow:
            capacity *= 2
            if position + 1 > capacity * 3 // 4:  # treeifyBin's resize happens before the size check
                capacity *= 2
            chains = {}
            for earlier in spread[: position + 1]:
                slot = earlier & (capacity - 1)
                chains[slot] = chains.get(slot, 0) + 1
    order = sorted(range(len(keys)), key=lambda position: (spread[position] & (capacity - 1), position))
    return tuple(keys[position] for position in order)


def java_double(value: float) -> str:
    """Java's Double.toString: plain between 10^-3 and 10^7, else `d.dddE<n>`; always a digit after the point."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    digits_tuple = Decimal(repr(magnitude)).as_tuple()
    digits = "".join(str(digit) for digit in digits_tuple.digits).lstrip("0")
    exponent = int(digits_tuple.exponent)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    point = len(digits) - 1 + exponent  # the power of ten of the first digit
    if 1e-3 <= magnitude < 1e7:
        if point >= 0:
            whole = digits[: point + 1].ljust(point + 1, "0")
            fraction = digits[point + 1:] or "0"
        else:
            whole, fraction = "0", "0" * (-point - 1) + digits
        return f"{sign}{whole}.{fraction}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point}"


def _java_escapes() -> dict[int, str]:
    r"""json-simple's escapes, as one translation table: the short forms, `\/`, and `\uXXXX` (upper-case hex) for
    control characters and the U+2000-U+20FF block."""
    table = {code: f"\\u{code:04X}" for span in ((0, 0x1F), (0x7F, 0x9F), (0x2000, 0x20FF))
             for code in range(span[0], span[1] + 1)}
    table.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("/"): "\\/", ord("\b"): "\\b", ord("\f"): "\\f",
                  ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
    return table


_ESCAPES = _java_escapes()


def _escape(text: str) -> str:
    return text.translate(_ESCAPES)


def dumps(value: Any) -> str:
    """json-simple's toJSONString of a parsed value: compact, `\\/`, HashMap member order, NaN/Infinity as null."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "null" if math.isnan(value) or math.isinf(value) else java_double(value)
    if isinstance(value, str):
        return '"' + _escape(value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = [str(key) for key in value]
        items = {str(key): item for key, item in value.items()}
        return "{" + ",".join(f'"{_escape(key)}":{dumps(items[key])}' for key in hashmap_order(keys)) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def encode(text: str) -> bytes:
    """The bytes Java writes for a string: UTF-8, an unpaired surrogate as `?`."""
    return text.encode("utf-8", "replace")


def java_text(value: Any) -> str:
    """Java's toString of a value the front end read from a header map: `{k=v, k2=v2}`, `[a, b]`, `true`, `7`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(java_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={java_text(item)}" for key, item in value.items()) + "}"
    return str(value)
