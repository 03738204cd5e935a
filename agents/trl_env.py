"""CLI-Gym tasks as TRL's `GRPOTrainer(environment_factory=...)` environment: no glue to write.

    from trl import GRPOConfig, GRPOTrainer
    from agents.trl_env import CLIGymToolEnv, dataset

    trainer = GRPOTrainer(model=..., args=GRPOConfig(...), train_dataset=dataset(task_ids),
                          environment_factory=lambda: CLIGymToolEnv(registry="tasks/"))

TRL makes one instance per concurrent rollout and reuses it: `reset(**row)` starts a fresh container of the row's
`task_id` (else a random task) and returns the issue text, which TRL appends to the prompt's last user message;
the public methods `bash` and `submit` become the model's tools (their signatures and docstrings are the schema);
`get_reward` grades the container with CLIGym-v0's real grader (the tests run in a fresh snapshot container) and
removes it. An instance never holds more than one container: `reset` ends the previous episode, grading removes
the sandbox, and `close_all()` (also run at interpreter exit) closes every instance still open.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any, Sequence

from agents import prompt
from cligym_env.env import SUBMIT, CLIGymEnv
from cligym_env.tasks.registry import Registry

logger = logging.getLogger(__name__)
_OPEN: weakref.WeakSet[CLIGymToolEnv] = weakref.WeakSet()


def dataset(task_ids: Sequence[str], repeats: int = 1):
    """A TRL prompt dataset: one row per task (times `repeats`), the tool-call system prompt, the task id."""
    from datasets import Dataset

    rows = [{"prompt": [{"role": "system", "content": prompt.SYSTEM_TOOLS}, {"role": "user", "content": ""}],
             "task_id": task_id} for _ in range(repeats) for task_id in task_ids]
    return Dataset.from_list(rows)


class CLIGymToolEnv:
    """One CLI-Gym episode at a time behind a `bash` tool, a `submit` tool and the grader's reward."""

    def __init__(self, registry: str | Path | Registry | None = None, *, task_ids: Sequence[str] | None = None,
                 max_steps: int = 30, output_limit: int = 4000, **env_kwargs: Any) -> None:
        self._env = CLIGymEnv(registry, task_ids=task_ids, max_steps=max_steps, **env_kwargs)
        self._output_limit = output_limit
        self._reward: float | None = None  # None while the episode runs (or before the first)
        self.task_id: str | None = None
        self.info: dict[str, Any] = {}  # the grading step's info: tests, resolved, tamper, error
        self.rewards: list[float] = []  # every reward this instance handed out, in order
        self._finalizer = weakref.finalize(self, self._env.close)  # and at interpreter exit
        _OPEN.add(self)

    def reset(self, **row: Any) -> str:
        """Start a fresh container of `row["task_id"]` (a random task without one); the issue text."""
        task_id = row.get("task_id")
        instruction, info = self._env.reset(options={"task_id": task_id} if task_id else None)
        self.task_id, self._reward, self.info = info["task_id"], None, {}
        logger.debug("episode of %s started in %s", self.task_id, self._env.container_name)
        return instruction

    def bash(self, command: str) -> str:
        """Run a command in the persistent, non-interactive bash shell of the broken environment.

        Args:
            command: The command(s) to run, as one bash script.

        Returns:
            The exit code and the output (long outputs keep their head and tail).
        """
        if self._reward is not None:
            return "The episode is over: nothing ran."
        observation, reward, terminated, truncated, info = self._env.step(command)
        if terminated or truncated:
            self._graded(reward, info)
            return f"{observation}\nThe episode is over (graded)."
        return prompt.observation(observation, info["exit_code"], info["timed_out"], self._output_limit)

    def submit(self) -> str:
        """Declare the problem fixed: hidden tests grade the environment and the episode ends.

        Returns:
            A confirmation that the environment was graded.
        """
        if self._reward is None:
            _, reward, _, _, info = self._env.step(SUBMIT)
            self._graded(reward, info)
        return "Submitted: the environment was graded and the episode is over."

    def get_reward(self) -> float:
        """The grader's reward for the episode (grading it now if the model never submitted)."""
        if self._env.task is None:
            raise RuntimeError("get_reward() before reset(): no episode to grade")
        self.submit()
        return self._reward

    def _graded(self, reward: float, info: dict[str, Any]) -> None:
        self._reward, self.info = float(reward), dict(info)
        self.rewards.append(self._reward)
        logger.info("%s graded: reward %s", self.task_id, self._reward)


def close_all() -> None:
    """Remove the container of every instance still open (TRL never closes its environments)."""
    for env in list(_OPEN):
        env._finalizer()
