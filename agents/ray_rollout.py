"""The lock-step rollout spread over a Ray cluster (the `ray` extra).

Each worker is an actor with its own pool of environments and its own policy (built from a `PolicySpec`). Its
environments talk to the Docker daemon of the node it was placed on: that node's `DOCKER_HOST` (set it where the
node's `ray start` runs) or else its local socket. Every node needs the task registry at the same path (a shared or
synced folder). The driver hands out small batches of (task, episode) pairs and appends each batch's trajectories to
the output file as it returns, so the file and resuming work exactly as with `agents.rollout.rollout`.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Sequence

import ray
from rich.console import Console
from rich.progress import Progress

from agents.policies import PolicySpec, close_policy, make_policy
from agents.rollout import EnvPool, RolloutConfig, RolloutStats, pending
from agents.trajectory import Trajectory, append_jsonl
from cligym_env.env import CLIGymEnv
from cligym_env.tasks.registry import Registry


@ray.remote(num_cpus=1)
class RolloutWorker:
    def __init__(self, spec: PolicySpec, registry_path: str, task_ids: Sequence[str], config: RolloutConfig) -> None:
        registry = Registry(Path(registry_path))
        self.policy = make_policy(spec, registry)
        environments = [CLIGymEnv(registry, task_ids=task_ids, max_steps=config.max_turns + 1,
                                  command_timeout=config.command_timeout) for _ in range(config.envs)]
        self.pool = EnvPool(environments, self.policy, config)
        self.where = {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                      "pid": os.getpid(), "docker_host": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")}

    def run(self, pairs: Sequence[tuple[str, int]]) -> tuple[list[Trajectory], RolloutStats]:
        """Play `pairs` on this node; each trajectory's `extra["worker"]` says where it ran."""
        stats = RolloutStats(unbuildable=self.pool.prepare(sorted({task_id for task_id, _ in pairs})))
        finished: list[Trajectory] = []
        self.pool.run([pair for pair in pairs if pair[0] not in stats.unbuildable], finished.append, stats)
        for trajectory in finished:
            trajectory.extra["worker"] = self.where
        return finished, stats

    def close(self) -> None:
        self.pool.close()
        close_policy(self.policy)


def ray_rollout(spec: PolicySpec, task_ids: Sequence[str], out: Path, config: RolloutConfig = RolloutConfig(), *,
                registry: Registry, workers: int | None = None) -> RolloutStats:
    """Like `rollout`, over `workers` actors (default: one per alive node) of `envs` environments each.

    Call `ray.init(...)` first (a local cluster, or `address=` an existing one); this does not shut Ray down.
    The returned `env_s` and `policy_s` are summed over the workers; `wall_s` is the driver's.
    """
    todo, skipped = pending(task_ids, config.episodes, out)
    stats = RolloutStats(skipped=skipped)
    if not todo:
        return stats
    count = workers or sum(node["Alive"] for node in ray.nodes())
    gpus = 1 if spec.name == "vllm" and ray.cluster_resources().get("GPU") else 0  # a vLLM engine per worker
    actors = [RolloutWorker.options(scheduling_strategy="SPREAD", num_gpus=gpus).remote(
        spec, str(registry.path), list(task_ids), config) for _ in range(min(count, -(-len(todo) // config.envs)))]
    size = 2 * config.envs  # a batch keeps a worker's envs busy while the driver writes the last one's results
    batches = [todo[i:i + size] for i in range(0, len(todo), size)]
    started = time.monotonic()
    with Progress(console=Console(stderr=True), disable=not config.progress) as bar:
        job = bar.add_task(f"{spec.name} rollouts on {len(actors)} Ray workers", total=len(todo))
        try:
            running = {actor.run.remote(batch): actor for actor, batch in zip(actors, batches)}
            waiting = batches[len(running):]
            while running:
                [ready], _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(ready)
                trajectories, part = ray.get(ready)
                append_jsonl(out, trajectories)
                stats.episodes += part.episodes
                stats.rewards += part.rewards
                stats.unbuildable.update(part.unbuildable)
                stats.rounds, stats.env_s, stats.policy_s = (stats.rounds + part.rounds, stats.env_s + part.env_s,
                                                             stats.policy_s + part.policy_s)
                bar.update(job, advance=len(trajectories))
                if waiting:
                    running[actor.run.remote(waiting.pop(0))] = actor
        finally:
            closing = [actor.close.remote() for actor in actors]  # removes their containers
            ray.wait(closing, num_returns=len(closing), timeout=120)  # never masks the error that got us here
            for actor in actors:
                ray.kill(actor)
    stats.wall_s = time.monotonic() - started
    return stats
