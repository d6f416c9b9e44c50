"""Weighted routing: each invocation of an alias with a RoutingConfig picks its version afresh."""
from __future__ import annotations

import random
from typing import Callable, Mapping


def choose_version(
    primary: str, additional_weights: Mapping[str, float], draw: Callable[[], float] = random.random
) -> str:
    """Each additional version with the probability of its weight, the primary version with the rest.

    `draw` returns a uniform number in [0, 1); tests pass a seeded generator's.
    """
    point = draw()
    for version, weight in additional_weights.items():
        if point < weight:
            return version
        point -= weight
    return primary
