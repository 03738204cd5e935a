"""Run a policy through `CLIGym-v0` episodes: one at a time, or over a pool of M environments in lock-step.

Lock-step: each round makes ONE `policy.act` call for every running episode (one batched generate for an LLM),
then runs the commands in parallel threads (Docker work is I/O), starting the next queued episode on any env whose
episode just ended. Finished trajectories are appended to a JSONL file at once, so a restart resumes.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import gymnasium as gym
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agents.episode import Episode
from agents.policy import Policy, Reply
from agents.trajectory import Trajectory, append_jsonl, read_jsonl
from cligym_env.env import CLIGymEnv
from cligym_env.error import ConfigError
from cligym_env.tasks.registry import Registry


def run_episode(env: gym.Env, policy: Policy, *, task_id: str | None = None, seed: int | None = None,
                max_turns: int = 50) -> Trajectory:
    """One episode, start to grade. The environment's container is gone when this returns."""
    episode = Episode.start(env, policy, task_id, seed=seed, max_turns=max_turns)
    while not episode.trajectory.done:
        episode.apply(policy.act([episode.trajectory])[0])
    return episode.trajectory


@dataclass(frozen=True)
class RolloutConfig:
    """How a rollout runs: the same for the lock-step pool, the Ray workers and the CLI."""

    episodes: int = 1  # attempts at each task
    envs: int = 4  # environments in lock-step (per Ray worker)
    max_turns: int = 30  # replies per episode, malformed ones included
    output_limit: int = 4000  # characters of each command's output the policy is shown
    command_timeout: float = 60.0  # seconds per command
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        for name in ("episodes", "envs", "max_turns", "output_limit"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"rollout setting {name}={getattr(self, name)!r} must be a whole number >= 1")
        if not self.command_timeout > 0:
            raise ConfigError(f"rollout setting command_timeout={self.command_timeout!r} must be a number of "
                             "seconds > 0")

@dataclass
class RolloutStats:
    episodes: int = 0  # finished by this run
    skipped: int = 0  # already in the output file
    rounds: int = 0  # lock-step rounds, one policy.act call each
    wall_s: float = 0.0  # from the first reset to the last grade (image builds excluded)
    env_s: float = 0.0  # waiting on resets, commands and grading
    policy_s: float = 0.0  # inside policy.act
    rewards: list[float] = field(default_factory=list)
    unbuildable: dict[str, str] = field(default_factory=dict)  # task id -> why its image could not be built

    @property
    def episodes_per_minute(self) -> float:
        return 60 * self.episodes / self.wall_s if self.wall_s else 0.0


class EnvPool:
    """M environments kept busy by one policy; reused across batches of episodes (e.g. by a Ray worker)."""

    def __init__(self, envs: Sequence[gym.Env], policy: Policy, config: RolloutConfig = RolloutConfig()) -> None:
        self.envs, self.policy = list(envs), policy
        self.max_turns, self.output_limit = config.max_turns, config.output_limit
        self._threads = ThreadPoolExecutor(len(self.envs), thread_name_prefix="cligym-env")
        for env in self.envs:  # connect now: connecting sweeps stale containers, which races removals mid-run
            env.unwrapped.prepare(())

    def prepare(self, task_ids: Sequence[str]) -> dict[str, str]:
        """Build the task images once, before M environments would each build them at the same time.

        Returns the tasks whose image cannot be built (id -> why); every env skips them from now on."""
        unbuildable = self.envs[0].unwrapped.prepare(task_ids)
        for env in self.envs[1:]:
            env.unwrapped.skip(unbuildable)
        return unbuildable

    def run(self, pairs: Sequence[tuple[str, int]], on_done: Callable[[Trajectory], None],
            stats: RolloutStats) -> None:
        """Play every (task_id, episode index) in `pairs`; `on_done` gets each trajectory as its episode ends."""
        queue = deque(pairs)
        running: list[Episode | None] = [None] * len(self.envs)
        started = time.monotonic()

        def advance(slot: int, reply: Reply | None) -> Trajectory | None:
            finished, episode = None, running[slot]
            if episode is not None and reply is not None:
                episode.apply(reply)
                if episode.trajectory.done:
                    finished, running[slot] = episode.trajectory, None
            if running[slot] is None:
                try:
                    task_id, index = queue.popleft()  # atomic: threads never get the same pair
                except IndexError:
                    return finished
                running[slot] = Episode.start(self.envs[slot], self.policy, task_id, episode=index,
                                              max_turns=self.max_turns, output_limit=self.output_limit)
            return finished

        replies: list[Reply | None] = [None] * len(self.envs)
        while True:
            tick = time.monotonic()
            futures = [self._threads.submit(advance, slot, reply) for slot, reply in enumerate(replies)]
            errors = [error for error in (future.exception() for future in futures) if error is not None]
            for finished in (future.result() for future in futures if future.exception() is None):
                if finished is not None:  # saved even when another env failed this round
                    stats.episodes += 1
                    stats.rewards.append(finished.reward or 0.0)
                    on_done(finished)
            stats.env_s += time.monotonic() - tick
            if errors:
                raise errors[0]
            active = {slot: episode for slot, episode in enumerate(running) if episode is not None}
            if not active:
                break
            tick = time.monotonic()
            answers = self.policy.act([episode.trajectory for episode in active.values()])
            stats.policy_s += time.monotonic() - tick
            stats.rounds += 1
            replies = [None] * len(self.envs)
            for slot, answer in zip(active, answers):
                replies[slot] = answer
        stats.wall_s += time.monotonic() - started

    def close(self) -> None:
        """Close every env (removing any container still running), in parallel."""
        list(self._threads.map(lambda env: env.close(), self.envs))
        self._threads.shutdown()


def pending(task_ids: Sequence[str], episodes: int, out: Path) -> tuple[list[tuple[str, int]], int]:
    """(task_id, episode index) pairs not yet in `out`, episode-major; and how many were already there."""
    finished = {(t.task_id, t.episode) for t in read_jsonl(out)}
    wanted = [(task_id, index) for index in range(episodes) for task_id in task_ids]
    todo = [pair for pair in wanted if pair not in finished]
    return todo, len(wanted) - len(todo)


def rollout(policy: Policy, task_ids: Sequence[str], out: Path, config: RolloutConfig = RolloutConfig(), *,
            registry: Registry | None = None, env_factory: Callable[[], gym.Env] | None = None) -> RolloutStats:
    """`config.episodes` attempts at each task over `config.envs` environments, appended to `out` (JSONL) as they
    finish. Tasks whose image cannot be built are skipped (logged, and listed in `stats.unbuildable`)."""
    todo, skipped = pending(task_ids, config.episodes, out)
    stats = RolloutStats(skipped=skipped)
    if not todo:
        return stats
    registry = registry or Registry.default()
    factory = env_factory or (lambda: CLIGymEnv(registry, task_ids=task_ids, max_steps=config.max_turns + 1,
                                                 command_timeout=config.command_timeout))
    pool = EnvPool([factory() for _ in range(min(config.envs, len(todo)))], policy, config)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), disable=not config.progress)
    try:
        stats.unbuildable = pool.prepare(sorted({task_id for task_id, _ in todo}))
        todo = [(task_id, index) for task_id, index in todo if task_id not in stats.unbuildable]
        with bar:
            job = bar.add_task(f"{policy.name} rollouts", total=len(todo))

            def done(trajectory: Trajectory) -> None:
                append_jsonl(out, [trajectory])
                mean = sum(stats.rewards) / len(stats.rewards)
                bar.update(job, advance=1, description=f"{policy.name} rollouts, mean reward {mean:.2f}")

            pool.run(todo, done, stats)
    finally:
        pool.close()
    return stats
