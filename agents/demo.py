"""The main job end to end, the way a new user first meets it (`cligym demo`).

Bootstrap the base images, build the gold environment of a small real project, mint tasks from it by
environment inversion, then prove every task in the registry sound through `CLIGym-v0`: the oracle repair
scores 1.0 and a no-op scores 0.0. It lives with the agents because it drives policies.
"""

from __future__ import annotations

import logging
import time

from rich.console import Console
from rich.table import Table

from agents.baselines import NoopPolicy, OraclePolicy
from agents.rollout import run_episode
from cligym_env.env import CLIGymEnv
from cligym_env.tasks.registry import Registry

logger = logging.getLogger(__name__)


def run_demo(registry: Registry, *, project: str = "iniconfig", max_tasks: int = 6, seed: int = 0) -> bool:
    """Return True when every task scores oracle 1.0 and no-op 0.0."""
    from cligym_env.generator.command import run_generate
    from cligym_env.generator.types import GenerateConfig
    from cligym_env.images import bootstrap
    from cligym_env.runtime.docker_client import connect

    bootstrap(connect())
    if project:
        run_generate(registry, GenerateConfig(projects=(project,), max_tasks=max_tasks, workers=2, seed=seed),
                     Console(stderr=True))
    env = CLIGymEnv(registry)
    table = Table("task", "project", "category", "oracle", "no-op", "seconds", title="CLI-Gym: every task checked")
    healthy = True
    try:
        for task_id in env.task_ids:
            task = registry.get(task_id)
            logger.info("%s: building its image and running the baselines...", task_id)
            if env.prepare([task_id]):
                healthy = False
                table.add_row(task_id, task.metadata.project, task.metadata.category, "[red]-[/red]", "[red]-[/red]",
                              "image build failed")
                continue
            started = time.monotonic()
            oracle = run_episode(env, OraclePolicy(registry), task_id=task_id).reward
            noop = run_episode(env, NoopPolicy(), task_id=task_id).reward
            ok = oracle == 1.0 and noop == 0.0
            healthy &= ok
            style = "green" if ok else "red"
            table.add_row(task_id, task.metadata.project, task.metadata.category, f"[{style}]{oracle:.1f}[/{style}]",
                          f"[{style}]{noop:.1f}[/{style}]", f"{time.monotonic() - started:.1f}")
    finally:
        env.close()
    Console().print(table)
    return healthy
