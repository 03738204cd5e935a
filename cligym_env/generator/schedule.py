"""Which candidate to validate next: the run learns which operators bite, and spends its budget on them.

A fixed order spends most of a project's budget on operators that cannot bite it (a resource limit on a suite that
never opens many files, a time-zone deletion for a project that never reads one) and on breakages a plain
reinstall undoes. Every outcome in the run log (all projects, earlier runs of the same seed included) is evidence
about its operator, so the scheduler keeps, per operator, a smoothed value of what its candidates gave:

- 1 for a kept task that one reinstall of the project does not solve (what a policy must diagnose),
- `SHORTCUT_VALUE` for a kept task that reinstall solves,
- 0 for a candidate that broke nothing, could not be built, was flaky or whose repair failed; and, once the
  project has its share of whole-suite breakages (`narrow`), 0 also for one that left no test passing.

This project's own outcomes weigh `LOCAL_WEIGHT` times more than other projects'. The next candidate is the first
untried one (operators keep their own seeded order) of the operator with the best priority:

- its value, plus `CATEGORY_BONUS` while its category is untried on this project (so a small budget still covers
  the categories), unless the value fell below `EXPLORE_FLOOR` (it failed again and again elsewhere);
- less `DIVERSITY` per task it already gave this project (one operator that bites well does not make them all).

Not tried again on this project: an operator whose last `DEAD_AFTER` candidates here (its last one, below the
floor) gave nothing it can keep; and, once narrow breakages are needed and `DEAD_AFTER` breakages inside the project
itself (its files, distribution or import name) broke its whole suite, the other breakages inside it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from cligym_env.generator.types import Breakage, GoldProbe

if TYPE_CHECKING:
    from cligym_env.generator.pipeline import Outcome

SHORTCUT_VALUE = 0.4
LOCAL_WEIGHT = 3.0
PRIOR = (1.0, 2.0)  # pseudo-value, pseudo-count: an operator with no record starts at 0.5
CATEGORY_BONUS = 1.0  # larger than any value: an untried category goes first
DEAD_AFTER = 2
DIVERSITY = 0.2
EXPLORE_FLOOR = 0.2  # below this value an operator earns no category bonus, and one useless try here kills it


@dataclass
class _Record:
    value: float = 0.0  # sum of outcome values, weighted
    narrow_value: float = 0.0  # the same with whole-suite outcomes worth 0
    count: float = 0.0

    def add(self, outcome: Outcome, weight: float) -> None:
        value = outcome_value(outcome)
        self.value += weight * value
        self.narrow_value += weight * (0.0 if whole_suite(outcome) else value)
        self.count += weight

    def mean(self, narrow: bool) -> float:
        return ((self.narrow_value if narrow else self.value) + PRIOR[0]) / (self.count + PRIOR[1])


def whole_suite(outcome: Outcome) -> bool:
    return outcome.reason.startswith("whole-suite") or (outcome.status == "accepted" and outcome.pass_to_pass == 0)


def outcome_value(outcome: Outcome) -> float:
    """What a candidate gave: a kept task (less if one reinstall of the project solves it); a duplicate or a
    whole-suite breakage set aside were real breakages, worth a little; the rest nothing."""
    if outcome.status == "accepted":
        return SHORTCUT_VALUE if "reinstall-project" in outcome.shortcuts else 1.0
    if outcome.status == "duplicate" or outcome.reason.startswith("whole-suite"):
        return SHORTCUT_VALUE / 2
    return 0.0


def inside_project(probe: GoldProbe) -> Callable[[str], bool]:
    """Does a target (a path, `dist`, `dist:kind`, `module@place`...) name the project itself?"""
    site = probe.site_packages.rstrip("/")
    own = [d for d in probe.distributions if probe.project_module in d.top_level]
    names = {probe.project_module} | {d.name.lower() for d in own} | {t for d in own for t in d.top_level}
    prefixes = tuple(f"{site}/{top}{end}" for top in names for end in ("/", ".py", "."))

    def check(target: str) -> bool:
        return re.split(r"[:@]", target, maxsplit=1)[0].lower() in names or target.startswith(prefixes)
    return check


@dataclass
class Scheduler:
    """Hands out `candidates` of `project` one at a time, best first, learning from every recorded outcome."""

    project: str
    candidates: Sequence[Breakage]
    history: Iterable[Outcome] = ()
    inside: Callable[[str], bool] = lambda target: False  # `inside_project(probe)`
    _records: dict[str, _Record] = field(default_factory=lambda: defaultdict(_Record))
    _recent: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # this project's reasons
    _tried_categories: set[str] = field(default_factory=set)
    _kept: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # this project's tasks per operator
    _left: list[Breakage] = field(default_factory=list)
    _inside: list[bool] = field(default_factory=list)  # this project's outcomes inside it: whole-suite or not

    def __post_init__(self) -> None:
        self._left = list(self.candidates)
        for outcome in self.history:
            self.record(outcome)

    def __len__(self) -> int:
        return len(self._left)

    def record(self, outcome: Outcome) -> None:
        local = outcome.project == self.project
        self._records[outcome.operator].add(outcome, LOCAL_WEIGHT if local else 1.0)
        if local:
            self._tried_categories.add(outcome.category)
            self._kept[outcome.operator] += outcome.status == "accepted"
            if self.inside(outcome.target) and (outcome.status == "accepted" or whole_suite(outcome)):
                self._inside.append(whole_suite(outcome))
            self._recent[outcome.operator].append(
                "whole-suite" if whole_suite(outcome) else outcome.reason.split(":")[0] or outcome.status)

    def value(self, operator: str, narrow: bool = False) -> float:
        return self._records[operator].mean(narrow)

    def dead(self, operator: str, narrow: bool = False) -> bool:
        """Its last `DEAD_AFTER` candidates here gave nothing this project can keep now."""
        tries = 1 if self.value(operator, narrow) < EXPLORE_FLOOR else DEAD_AFTER
        recent = self._recent[operator][-tries:]
        useless = ("breaks-nothing", "build-failed", "runner-broken", "oracle-failed", "oracle-flagged", "flaky",
                   *(("whole-suite",) if narrow else ()))
        return len(recent) == tries and all(reason in useless for reason in recent)

    def _inside_breaks_all(self) -> bool:
        return len(self._inside) >= DEAD_AFTER and all(self._inside)

    def next(self, narrow: bool = False) -> Breakage | None:
        """The best candidate left; None when none is, or when all that is left are operators that broke nothing
        here and breakages the project already showed break its whole suite (`narrow`: it needs no more of those)."""
        if not self._left:
            return None
        best = max(range(len(self._left)), key=lambda i: (self._priority(self._left[i], narrow), -i))
        if self._priority(self._left[best], narrow) < 0:
            return None
        chosen = self._left.pop(best)
        self._tried_categories.add(chosen.category)  # in flight: the next pick goes to another category
        return chosen

    def _priority(self, candidate: Breakage, narrow: bool) -> float:
        if self.dead(candidate.operator, narrow):
            return -1.0
        if narrow and self._inside_breaks_all() and self.inside(candidate.target):
            return -0.5
        value = self.value(candidate.operator, narrow)
        explore = candidate.category not in self._tried_categories and value >= EXPLORE_FLOOR
        return value + (CATEGORY_BONUS if explore else 0.0) - DIVERSITY * self._kept[candidate.operator]
