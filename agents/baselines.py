"""Baseline policies that bound every task: the oracle must score 1.0, the no-op 0.0."""

from __future__ import annotations

from typing import Sequence

from agents.policy import SUBMIT
from agents.trajectory import Trajectory
from cligym_env.tasks.registry import Registry


class NoopPolicy:
    """Submits at once: a task this solves was never broken."""

    name = "noop"

    def act(self, trajectories: Sequence[Trajectory]) -> list[str]:
        return [SUBMIT for _ in trajectories]


class OraclePolicy:
    """Runs the task's own solution script, then submits: a task this fails is not solvable."""

    name = "oracle"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def act(self, trajectories: Sequence[Trajectory]) -> list[str]:
        return [self._next(trajectory) for trajectory in trajectories]

    def _next(self, trajectory: Trajectory) -> str:
        if trajectory.steps:
            return SUBMIT
        solution = self.registry.get(trajectory.task_id).solution
        return f"bash <<'CLIGYM_SOLUTION_EOF'\n{solution.rstrip()}\nCLIGYM_SOLUTION_EOF"
