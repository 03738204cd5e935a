"""Scripted policies: the oracle must score 1.0 and the no-op 0.0 on every task; `random` is a floor for LLMs."""

from __future__ import annotations

import random
from typing import Sequence

from agents.policy import SUBMIT, Reply
from agents.prompt import scripted_reply
from agents.trajectory import Trajectory
from cligym_env.runtime.shell import script_command
from cligym_env.tasks.registry import Registry

# Commands an agent plausibly runs while looking around a broken machine; none of them repairs anything.
PLAUSIBLE_COMMANDS = (
    "ls -la", "pwd", "ls -la /app", "cat /etc/os-release", "env | sort | head -20", "ps aux | head",
    "df -h", "id", "python3 --version", "which python3 pip", "pip list 2>/dev/null | head -20",
    "ls -la /usr/local/bin", "cat /etc/hosts", "uname -a", "find /app -maxdepth 2 -type f | head -20",
)


class NoopPolicy:
    """Submits at once: a task this solves was never broken."""

    name = "noop"

    def act(self, trajectories: Sequence[Trajectory]) -> list[Reply]:
        return [scripted_reply(SUBMIT) for _ in trajectories]


class OraclePolicy:
    """Runs the task's own solution script, then submits: a task this fails is not solvable."""

    name = "oracle"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def act(self, trajectories: Sequence[Trajectory]) -> list[Reply]:
        return [scripted_reply(self._next(trajectory)) for trajectory in trajectories]

    def _next(self, trajectory: Trajectory) -> str:
        if trajectory.steps:
            return SUBMIT
        solution = self.registry.get(trajectory.task_id).solution
        return script_command(solution)


class RandomPolicy:
    """A few commands drawn from `PLAUSIBLE_COMMANDS`, then submit.

    Each episode's draw depends only on (seed, task, episode index), so it does not change with the batching.
    """

    name = "random"

    def __init__(self, seed: int = 0, max_commands: int = 3) -> None:
        self.seed, self.max_commands = seed, max_commands

    def act(self, trajectories: Sequence[Trajectory]) -> list[Reply]:
        return [scripted_reply(self._next(trajectory)) for trajectory in trajectories]

    def _next(self, trajectory: Trajectory) -> str:
        rng = random.Random(f"{self.seed}:{trajectory.task_id}:{trajectory.episode}")
        plan = rng.choices(PLAUSIBLE_COMMANDS, k=rng.randint(0, self.max_commands))
        done = len(trajectory.turns)
        return plan[done] if done < len(plan) else SUBMIT
