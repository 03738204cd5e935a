"""`CLIGym-v0`: a policy types shell commands into a fresh container of a broken task image.

An episode: `reset` starts a container of the task's broken image and returns the instruction; each `step`
runs one command in a persistent shell and returns its output; the action `submit` (or the step limit)
ends the episode, and only then are the hidden tests copied in and run to compute the reward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import docker
import gymnasium as gym
from docker.errors import DockerException

from cligym_env import spaces
from cligym_env.grading import Grade, grade
from cligym_env.images import build_environment
from cligym_env.runtime.docker_client import connect
from cligym_env.runtime.sandbox import Limits, Sandbox, cleanup
from cligym_env.runtime.shell import CommandResult, ShellError
from cligym_env.tasks import Task
from cligym_env.tasks.task import UNVERIFIED
from cligym_env.tasks.registry import Registry

SUBMIT = "submit"


class CLIGymEnv(gym.Env[str, str]):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, registry: str | Path | Registry | None = None, *, task_ids: Sequence[str] | None = None,
                 category: str | None = None, project: str | None = None, difficulty: str | None = None,
                 max_steps: int = 50, command_timeout: float = 60.0, partial_credit: bool = False,
                 limits: Limits = Limits(), render_mode: str | None = None, include_unverified: bool = False) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None or 'ansi'")
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps} must be at least 1")
        self.registry = registry if isinstance(registry, Registry) else (
            Registry(Path(registry)) if registry is not None else Registry.default())
        self.task_ids = self._select(task_ids, category, project, difficulty, include_unverified)
        self.max_steps, self.command_timeout, self.partial_credit = max_steps, command_timeout, partial_credit
        self.limits, self.render_mode = limits, render_mode
        self.action_space = spaces.action_space()
        self.observation_space = spaces.observation_space()
        self.task: Task | None = None
        self.sandbox: Sandbox | None = None
        self.last_result: CommandResult | None = None  # includes the wall-clock duration kept out of `info`
        self.last_grade: Grade | None = None
        self.steps = 0
        self._client: docker.DockerClient | None = None
        self._images: dict[str, str] = {}
        self._transcript: list[str] = []

    def _select(self, task_ids: Sequence[str] | None, category: str | None, project: str | None,
                difficulty: str | None, include_unverified: bool) -> list[str]:
        if task_ids:
            for task_id in task_ids:
                self.registry.get(task_id)  # an unknown id fails now, with suggestions
            return sorted(task_ids)
        found = [row["id"] for row in self.registry.query(category=category, project=project, difficulty=difficulty)
                 if include_unverified or not row["generator"].startswith(UNVERIFIED)]  # no proven repair
        if not found:
            raise ValueError(
                f"no task in registry {self.registry.path} matches category={category!r}, project={project!r}, "
                f"difficulty={difficulty!r}; see `cligym tasks list`")
        return found

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:  # made lazily, in the worker process when vectorised
            self._client = connect()
            cleanup(self._client, stale_only=True)  # containers of runs on this host that were killed
        return self._client

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._end_sandbox()
        task_id = (options or {}).get("task_id") or self.task_ids[int(self.np_random.integers(len(self.task_ids)))]
        self.task = self.registry.get(task_id)
        image = self.image_for(self.task)
        self.sandbox = Sandbox(image, task_id=self.task.id, network=self.task.environment.network,
                               limits=self.limits, client=self.client).start()
        self.steps, self.last_result, self.last_grade = 0, None, None
        self._transcript = [self.task.instruction]
        meta = self.task.metadata
        info = {"task_id": self.task.id, "project": meta.project, "category": meta.category,
                "difficulty": meta.difficulty, "hint": meta.hint, "max_steps": self.max_steps}
        return spaces.sanitize(self.task.instruction), info

    def image_for(self, task: Task) -> str:
        """The task's broken image, built on first use and cached by content hash."""
        if task.id not in self._images:
            self._images[task.id] = build_environment(self.client, task.environment, what=f"task {task.id}")
        return self._images[task.id]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.sandbox is None or self.task is None:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        if not isinstance(action, str):
            raise TypeError(f"an action is a shell command string (or {SUBMIT!r}), got {type(action).__name__}")
        self.steps += 1
        if action.strip() == SUBMIT:
            return self._finish("submitted", truncated=False)
        try:
            self.last_result = result = self.sandbox.run(action, timeout=self.command_timeout)
        except (DockerException, ShellError) as error:  # the container itself is gone (OOM, killed from outside)
            self._end_sandbox()
            info = {"exit_code": None, "timed_out": False, "output_truncated": False, "shell_restarted": False,
                    "tests": {}, "resolved": False, "grading_error": f"the container stopped: {error}"}
            return spaces.sanitize(f"[cligym: the container stopped; the episode is over: {error}]"), 0.0, True, \
                False, info
        self._transcript += [f"$ {action}", result.output]
        info = {"exit_code": result.exit_code, "timed_out": result.timed_out,
                "output_truncated": result.output_truncated, "shell_restarted": result.shell_restarted}
        if self.steps >= self.max_steps:
            observation, reward, terminated, truncated, final = self._finish(result.output, truncated=True)
            return observation, reward, terminated, truncated, {**info, **final}
        return spaces.sanitize(result.output), 0.0, False, False, info

    def _finish(self, observation: str, *, truncated: bool) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Grade the container as the policy left it, then remove it."""
        assert self.sandbox is not None and self.task is not None
        try:
            self.last_grade = result = grade(self.sandbox, self.task.tests, partial_credit=self.partial_credit)
        finally:
            self._end_sandbox()
        info = {"tests": dict(result.tests), "resolved": result.resolved,
                "grading_error": result.run.error if result.run else ""}
        self._transcript.append(f"[episode over: reward {result.reward}]")
        return spaces.sanitize(observation), float(result.reward), not truncated, truncated, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return "\n".join(self._transcript)
        return None

    @property
    def container_name(self) -> str | None:
        return self.sandbox.name if self.sandbox else None

    def _end_sandbox(self) -> None:
        if self.sandbox is not None:
            sandbox, self.sandbox = self.sandbox, None
            sandbox.close()

    def close(self) -> None:
        self._end_sandbox()
        if self._client is not None:
            self._client.close()
            self._client = None
        super().close()
