"""The end-to-end check users run first: every task is solvable (oracle 1.0) and really broken (no-op 0.0)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from cligym_env.tasks.registry import Registry


def run_demo(registry: Registry, console: Console) -> bool:
    """Return True when every task scores oracle 1.0 and no-op 0.0."""
    from agents.baselines import NoopPolicy, OraclePolicy
    from agents.rollout import run_episode
    from cligym_env.env import CLIGymEnv
    from cligym_env.images import bootstrap
    from cligym_env.runtime.docker_client import connect

    bootstrap(connect(), log=console.print)
    env = CLIGymEnv(registry)
    table = Table("task", "category", "oracle", "no-op", "seconds", title="CLI-Gym baselines")
    healthy = True
    try:
        for task_id in env.task_ids:
            console.print(f"[dim]{task_id}: building image and running baselines...[/dim]")
            env.image_for(registry.get(task_id))
            started = time.monotonic()
            oracle = run_episode(env, OraclePolicy(registry), task_id=task_id).reward
            noop = run_episode(env, NoopPolicy(), task_id=task_id).reward
            ok = oracle == 1.0 and noop == 0.0
            healthy &= ok
            style = "green" if ok else "red"
            table.add_row(task_id, registry.get(task_id).metadata.category, f"[{style}]{oracle:.1f}[/{style}]",
                          f"[{style}]{noop:.1f}[/{style}]", f"{time.monotonic() - started:.1f}")
    finally:
        env.close()
    Console().print(table)
    return healthy
