"""`CLIGym-v0`: a policy types shell commands into a fresh container of a broken task image.

An episode: `reset` starts a container of the task's broken image and returns the instruction; each `step`
runs one command in a persistent shell and returns its output; the action `submit` (or the step limit)
ends the episode, and only then is the container's filesystem graded (see `cligym_env.grading.grader`).

Nothing that goes wrong raises out of `step()`: a container that dies, a disk cap exceeded, a Docker error or a
grading timeout ends the episode with `truncated=True`, reward 0 and `info["error"]` = {kind, message,
policy_caused}, so a rollout records it and goes on, and evaluation can leave infrastructure failures out.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import docker
import gymnasium as gym
from docker.errors import DockerException, NotFound

from cligym_env import spaces
from cligym_env.grading import Grade, grade
from cligym_env.grading.grader import Failure
from cligym_env.images import build_environment
from cligym_env.images.build import base_images, image_exists
from cligym_env.runtime.docker_client import connect
from cligym_env.runtime.sandbox import Limits, Sandbox, cleanup
from cligym_env.runtime.shell import CommandResult, ShellError
from cligym_env.tasks import Task
from cligym_env.tasks.task import UNVERIFIED
from cligym_env.tasks.registry import Registry
from cligym_env.error import CLIGymError, ConfigError, ImageBuildError, UnknownTaskError
from cligym_env.settings import check_settings

logger = logging.getLogger(__name__)
SUBMIT = spaces.SUBMIT
DISK_CHECK_INTERVAL = 1.0  # seconds between measurements of the writable layer, and after any command that ran
DISK_CHECK_AFTER = 0.1  # seconds or more (a command faster than that cannot write much)


class CLIGymEnv(gym.Env[str, str]):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, registry: str | Path | Registry | None = None, *, task_ids: Sequence[str] | None = None,
                 category: str | None = None, project: str | None = None, difficulty: str | None = None,
                 split: str | None = None, max_steps: int = 50, command_timeout: float = 60.0,
                 partial_credit: bool = False, limits: Limits = Limits(), render_mode: str | None = None,
                 include_unverified: bool = False, audit: str = "enforce") -> None:
        check_settings(render_mode=render_mode, audit=audit, limits=limits, max_steps=max_steps,
                        command_timeout=command_timeout, category=category, registry=registry, split=split)
        self.registry = registry if isinstance(registry, Registry) else (
            Registry(Path(registry)) if registry is not None else Registry.default())
        self.task_ids = self._select(task_ids, category, project, difficulty, split, include_unverified)
        self.unbuildable: dict[str, str] = {}  # task id -> why its image cannot be built (skipped by reset)
        self.max_steps, self.command_timeout, self.partial_credit = max_steps, command_timeout, partial_credit
        self.limits, self.render_mode, self.audit = limits, render_mode, audit
        self._disk_checked = 0.0
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
                difficulty: str | None, split: str | None, include_unverified: bool) -> list[str]:
        if task_ids is not None:
            if isinstance(task_ids, str) or not task_ids or not all(isinstance(t, str) for t in task_ids):
                raise ConfigError(f"task_ids={task_ids!r} must be a non-empty list of task id strings, e.g. "
                                  "task_ids=['example-bad-permission'] (or leave it out for every task)")
        if task_ids:
            for task_id in task_ids:
                self.registry.get(task_id)  # an unknown id fails now, with suggestions
            return sorted(task_ids)
        found = [row["id"] for row in self.registry.query(category=category, project=project, difficulty=difficulty,
                                                        split=split)
                 if include_unverified or not row["generator"].startswith(UNVERIFIED)]  # no proven repair
        for folder, problem in self.registry.problems():  # never left out silently
            logger.warning("task folder %s left out: %s", folder, problem)
        if not found:
            raise ConfigError(
                f"no task in registry {self.registry.path} matches category={category!r}, project={project!r}, "
                f"difficulty={difficulty!r}, split={split!r}; see `cligym tasks list`")
        return found

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:  # made lazily, in the worker process when vectorised
            self._client = connect()
            cleanup(self._client, stale_only=True)  # containers of runs on this host that were killed
        return self._client

    def prepare(self, task_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Connect to Docker now and build the images of `task_ids` (default: all of this env's tasks) ahead of the
        first reset. Returns the tasks whose image cannot be built (id -> why): reset skips them from now on."""
        self.client  # noqa: B018  (connects, sweeping this host's stale containers)
        for task_id in self.task_ids if task_ids is None else task_ids:
            self._image(task_id)
        return {task_id: why for task_id, why in self.unbuildable.items()
                if task_ids is None or task_id in task_ids}

    def skip(self, unbuildable: Mapping[str, str]) -> None:
        """Leave these tasks (id -> why) out of reset's choice, e.g. found unbuildable by another env."""
        self.unbuildable.update(unbuildable)

    @property
    def last_step_seconds(self) -> float:
        """Wall-clock seconds the last command ran (kept out of `info`, so seeded episodes compare equal)."""
        return self.last_result.duration if self.last_result else 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start a fresh container of a task: `options["task_id"]`, else a seeded choice among this env's tasks.

        A sampled task whose image cannot be built is skipped (logged, and listed in `info["skipped"]`) instead of
        ending a training run; an asked-for one raises `ImageBuildError`."""
        super().reset(seed=seed)
        self._end_sandbox()
        task_id, image = self._choose((options or {}).get("task_id"))
        self.task = self.registry.get(task_id)
        self.sandbox = Sandbox(image, task_id=self.task.id, network=self.task.environment.network,
                               limits=self.limits, client=self.client).start()
        self.steps, self.last_result, self.last_grade = 0, None, None
        self._disk_checked = time.monotonic()
        self._transcript = [self.task.instruction]
        meta = self.task.metadata
        info = {"task_id": self.task.id, "project": meta.project, "category": meta.category,
                "difficulty": meta.difficulty, "hint": meta.hint, "max_steps": self.max_steps,
                "skipped": dict(self.unbuildable)}
        return spaces.sanitize(self.task.instruction), info

    def _choose(self, asked: str | None) -> tuple[str, str]:
        """The task to play and its image: `asked`, else a seeded choice that skips tasks whose image cannot be
        built."""
        while True:
            choices = [task_id for task_id in self.task_ids if task_id not in self.unbuildable]
            if not asked and not choices:
                raise ImageBuildError("no task image of this environment can be built: " + "; ".join(
                    f"{task_id}: {why[:200]}" for task_id, why in self.unbuildable.items()))
            task_id = asked or choices[int(self.np_random.integers(len(choices)))]
            image = self._image(task_id)
            if image is not None:
                return task_id, image
            if asked:
                raise ImageBuildError(self.unbuildable[task_id])

    def _image(self, task_id: str) -> str | None:
        """The task's broken image, built on first use and cached by content hash; None (recorded) if it cannot be
        built: a failing RUN line, a missing base image or a task folder that no longer reads."""
        if task_id in self.unbuildable:
            return None
        if task_id not in self._images:
            try:
                task = self.registry.get(task_id)
                self._images[task_id] = build_environment(self.client, task.environment, what=f"task {task_id}")
            except UnknownTaskError:
                raise
            except CLIGymError as error:  # a failing build, a missing base image, a folder that no longer reads
                self.unbuildable[task_id] = str(error)
                logger.warning("task %s skipped: its image cannot be built: %s", task_id, str(error)[:500])
                return None
        return self._images[task_id]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.sandbox is None or self.task is None:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        if not isinstance(action, str):
            raise TypeError(f"an action is a shell command string (or {SUBMIT!r}), got {type(action).__name__}")
        self.steps += 1
        if action == SUBMIT:
            return self._finish("submitted", truncated=False)
        refusal = _refuse(action)
        try:
            if refusal:
                self.last_result = result = CommandResult(action, refusal, None, 0.0)
            else:
                self.last_result = result = self.sandbox.run(action, timeout=self.command_timeout)
            failure = self._check_disk(force=result.duration >= DISK_CHECK_AFTER)
        except (DockerException, ShellError) as error:  # the container itself is gone (OOM, killed)
            return self._fail(self._diagnose(error))
        if failure:
            return self._fail(failure, result.output)
        self._transcript += [f"$ {action}", result.output]
        info = {"exit_code": result.exit_code, "timed_out": result.timed_out,
                "output_truncated": result.output_truncated, "shell_restarted": result.shell_restarted}
        if self.steps >= self.max_steps:
            observation, reward, terminated, truncated, final = self._finish(result.output, truncated=True)
            return observation, reward, terminated, truncated, {**info, **final}
        return spaces.sanitize(result.output), 0.0, False, False, info

    def _finish(self, observation: str, *, truncated: bool) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Grade the filesystem the policy left (in a fresh container), then remove the sandbox."""
        assert self.sandbox is not None and self.task is not None
        try:
            failure = self._check_disk(force=True) or self._check_alive()
        except DockerException as error:
            failure = self._diagnose(error)
        if failure:
            return self._fail(failure, observation)
        try:
            self.last_grade = result = grade(self.sandbox, self.task.tests, references=self._references(),
                                             partial_credit=self.partial_credit, enforce=self.audit == "enforce")
        finally:
            self._end_sandbox()
        if result.failure:
            return self._fail(result.failure, observation, tamper=result.tamper)
        info = {"tests": dict(result.tests), "resolved": result.resolved,
                "grading_error": result.run.error if result.run else "", "tamper": list(result.tamper), "error": None}
        self._transcript.append(f"[episode over: reward {result.reward}]")
        return spaces.sanitize(observation), float(result.reward), not truncated, truncated, info

    def _fail(self, failure: Failure, observation: str = "", *,
              tamper: tuple[str, ...] = ()) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """End the episode without a grade: truncated, reward 0, what broke in `info["error"]`, and any audit
        findings made before it broke (a policy's tampering stays on record for curation)."""
        self._end_sandbox()
        self.last_grade = Grade(0.0, False, {t: "missing" for t in self.task.tests.selected} if self.task else {},
                                tamper=tuple(tamper), failure=failure)
        info = {"exit_code": None, "timed_out": False, "output_truncated": False, "shell_restarted": False,
                "tests": dict(self.last_grade.tests), "resolved": False, "grading_error": failure.message,
                "tamper": list(tamper), "error": failure.as_info()}
        self._transcript.append(f"[episode over: {failure.kind}: {failure.message}]")
        text = f"{observation}\n[cligym: the episode is over: {failure.message}]".lstrip("\n")
        return spaces.sanitize(text), 0.0, False, True, info

    def _references(self) -> list[str]:
        """Images whose content the audit trusts besides the task image: what it was built FROM."""
        assert self.task is not None
        return [image for image in base_images(self.task.environment.dockerfile) if image_exists(self.client, image)]

    def _check_disk(self, *, force: bool) -> Failure | None:
        """Measure the writable layer at most once a second (or when asked); a failure once it exceeds the cap."""
        assert self.sandbox is not None
        now = time.monotonic()
        if not force and now - self._disk_checked < DISK_CHECK_INTERVAL:
            return None
        self._disk_checked = now
        used = self.sandbox.disk_usage()
        if used > self.limits.disk_bytes:
            return Failure("disk-limit", f"the container wrote {used / 2**20:.0f} MiB, over its {self.limits.disk} "
                                         "disk limit", policy_caused=True)
        return None

    def _check_alive(self) -> Failure | None:
        assert self.sandbox is not None and self.sandbox.container is not None
        self.sandbox.container.reload()
        if self.sandbox.container.status != "running":
            return self._diagnose(RuntimeError(f"the container is {self.sandbox.container.status}"))
        return None

    def _diagnose(self, error: Exception) -> Failure:
        """Whose doing a dead or failing container is: the policy's (it exited, ran out of memory) or not."""
        container = self.sandbox.container if self.sandbox else None
        try:
            assert container is not None
            container.reload()
            state = container.attrs["State"]
        except (AssertionError, NotFound, DockerException):
            return Failure("container-died", f"the container was removed from outside: {error}", policy_caused=False)
        if state.get("Running"):
            return Failure("infrastructure", f"Docker failed while running the command: {error}", policy_caused=False)
        if state.get("OOMKilled"):
            return Failure("container-died", f"the container ran out of memory ({self.limits.memory})",
                           policy_caused=True)
        if self.sandbox is not None and self.sandbox.stopped_from_outside():
            return Failure("container-died", "the container was killed or stopped from outside", policy_caused=False)
        return Failure("container-died", f"the container exited (status {state.get('ExitCode')}): a command "
                                         "killed its main process", policy_caused=True)

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


def _refuse(action: str) -> str:
    """Why an action is not run, or '' (the policy is told, and the step counts)."""
    if len(action) > spaces.ACTION_MAX_LENGTH:
        return (f"[cligym: the command is {len(action)} characters long; at most {spaces.ACTION_MAX_LENGTH} are "
                "allowed. It was not run: write long content with several commands.]")
    if "\0" in action:
        return "[cligym: the command contains a NUL byte, which no shell can take. It was not run.]"
    return ""

