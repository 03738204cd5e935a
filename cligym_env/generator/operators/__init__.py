"""Inversion operators: many concrete, reproducible ways to break a gold environment, each with its repair.

Every operator reads the probe (what the tests import, which files each distribution owns, which libraries
link) to enumerate concrete targets; `propose` samples a few per operator with a seeded RNG.
"""

from __future__ import annotations

import random
from typing import Iterable

from cligym_env.generator.operators import (compatibility, concurrency, dependencies, filesystem, infrastructure,
                                            network, other, source)
from cligym_env.generator.operators._base import Operator, Target
from cligym_env.generator.types import Breakage, GoldProbe
from cligym_env.tasks.task import CATEGORIES

OPERATORS: tuple[Operator, ...] = tuple(
    op for family in (filesystem, infrastructure, dependencies, network, source, compatibility, concurrency, other)
    for op in family.OPERATORS)
REGISTRY: dict[str, Operator] = {op.name: op for op in OPERATORS}
assert len(REGISTRY) == len(OPERATORS), "operator names must be unique"
assert {op.category for op in OPERATORS} == set(CATEGORIES), "every category needs an operator"


def propose(probe: GoldProbe, rng: random.Random, categories: Iterable[str] | None = None,
            per_operator: int = 3) -> list[Breakage]:
    """Up to `per_operator` distinct breakages from each operator of the chosen categories, deduplicated by
    (operator, target); the same probe and seed give the same list."""
    wanted = set(categories) if categories is not None else set(CATEGORIES)
    unknown = wanted - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}; choose from {', '.join(CATEGORIES)}")
    proposals: list[Breakage] = []
    seen: set[tuple[str, str]] = set()
    for op in OPERATORS:
        if op.category not in wanted:
            continue
        taken = 0
        for breakage in op.breakages(probe, random.Random(rng.random())):
            if taken == per_operator:
                break
            if (breakage.operator, breakage.target) not in seen:
                seen.add((breakage.operator, breakage.target))
                proposals.append(breakage)
                taken += 1
    return proposals


__all__ = ["OPERATORS", "REGISTRY", "Operator", "Target", "propose"]
