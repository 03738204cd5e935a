"""pass@k over a task split, with confidence intervals.

Per task with n episodes of which c resolved, pass@k is the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et
al. 2021), and pass@1 = c/n gets a Wilson interval. The split's score is the mean over its tasks, with a bootstrap
interval that resamples tasks (episodes of one task are not independent draws of the split's difficulty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Iterable, Sequence

import numpy as np

from agents.trajectory import Trajectory
from cligym_env.error import ConfigError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k episodes drawn without replacement from n resolves, given c did."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class EvalConfig:
    """What `evaluate` computes: pass@k for each k, and intervals at `confidence`."""

    ks: tuple[int, ...] = (1,)
    confidence: float = 0.95
    resamples: int = 2000  # bootstrap resamples of the split's tasks
    seed: int = 0  # of the bootstrap

    def __post_init__(self) -> None:
        if not self.ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.ks):
            raise ConfigError(f"k values {list(self.ks)!r} must be whole numbers >= 1, e.g. --k 1,5")
        object.__setattr__(self, "ks", tuple(sorted(set(self.ks))))
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence={self.confidence!r} must be between 0 and 1, e.g. 0.95")
        if self.resamples < 1:
            raise ConfigError(f"resamples={self.resamples!r} must be at least 1")

    @classmethod
    def parse_ks(cls, text: str) -> tuple[int, ...]:
        """'1,5' -> (1, 5); anything else is a usage error naming the value."""
        try:
            return tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise ConfigError(f"--k {text!r}: give comma-separated whole numbers, e.g. --k 1,5") from None


@dataclass
class TaskScore:
    task_id: str
    n: int
    resolved: int
    pass_at: dict[int, float]  # only the k <= n
    wilson: tuple[float, float]  # interval of pass@1


@dataclass
class Report:
    ks: list[int]
    confidence: float
    tasks: list[TaskScore]
    overall: dict[int, tuple[float, float, float]]  # k -> (mean over tasks, low, high)
    missing: list[str] = field(default_factory=list)  # tasks of the split without any episode
    infrastructure_failures: int = 0  # episodes left out: they ended on a failure the policy did not cause
    tampered: int = 0  # episodes whose audit found tampering (counted, with reward 0)


def evaluate(trajectories: Iterable[Trajectory], config: EvalConfig = EvalConfig(), *,
             task_ids: Sequence[str] | None = None) -> Report:
    """Score the split `task_ids` (default: every task in `trajectories`); other tasks' episodes are ignored,
    and so are infrastructure failures (counted in the report)."""
    ks, confidence = config.ks, config.confidence
    outcomes: dict[str, list[bool]] = {}
    infrastructure = tampered = 0
    for trajectory in trajectories:
        if not trajectory.done or (task_ids is not None and trajectory.task_id not in task_ids):
            continue
        if trajectory.infrastructure_failure:
            infrastructure += 1
            continue
        tampered += bool(trajectory.tamper)
        outcomes.setdefault(trajectory.task_id, []).append(trajectory.resolved)
    scores = [TaskScore(task_id, len(runs), sum(runs),
                        {k: pass_at_k(len(runs), sum(runs), k) for k in ks if k <= len(runs)},
                        wilson(sum(runs), len(runs), confidence))
              for task_id, runs in sorted(outcomes.items())]
    rng = np.random.default_rng(config.seed)
    overall = {}
    for k in ks:
        values = np.array([score.pass_at[k] for score in scores if k in score.pass_at])
        if len(values):
            means = values[rng.integers(len(values), size=(config.resamples, len(values)))].mean(axis=1)
            low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
            overall[k] = (float(values.mean()), float(low), float(high))
    missing = sorted(set(task_ids or []) - set(outcomes))
    return Report(list(ks), confidence, scores, overall, missing, infrastructure, tampered)
