"""Rollout throughput: episodes per minute of the oracle on the example tasks with M = 1, 4, 16 lock-step envs.

Run: `.venv/bin/python benchmarks/rollout_throughput.py [--episodes N] [--envs 1,4,16]`. Each M plays the same
episodes (N per task) into a fresh file, after one warm-up run that builds the images. Prints episodes/min against
M=1 and the share of wall time spent waiting on the environments (reset, commands, grading) and in the policy.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agents.baselines import OraclePolicy
from agents.rollout import RolloutConfig, rollout
from cligym_env.images import bootstrap
from cligym_env.runtime.docker_client import connect
from cligym_env.tasks.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=6, help="episodes per task, for every M")
    parser.add_argument("--envs", default="1,4,16", help="comma-separated pool sizes")
    args = parser.parse_args()
    sizes = [int(value) for value in args.envs.split(",")]
    bootstrap(connect())
    with tempfile.TemporaryDirectory(prefix="cligym-bench-") as scratch:
        registry = Registry(Path(scratch) / "tasks")
        registry.install_examples()
        policy, task_ids = OraclePolicy(registry), registry.ids()
        rollout(policy, task_ids, Path(scratch) / "warm-up.jsonl",
                RolloutConfig(episodes=1, envs=1, progress=False), registry=registry)
        results = {}
        for size in sizes:
            stats = rollout(policy, task_ids, Path(scratch) / f"m{size}.jsonl",
                            RolloutConfig(episodes=args.episodes, envs=size, progress=False), registry=registry)
            assert stats.rewards == [1.0] * len(stats.rewards), f"the oracle failed with M={size}"
            results[size] = stats
    baseline = results[sizes[0]].episodes_per_minute
    table = Table("M", "episodes", "wall s", "episodes/min", f"vs M={sizes[0]}", "env share", "policy share",
                  title=f"oracle rollouts, {len(task_ids)} example tasks x {args.episodes}; env = reset+step+grade")
    for size, stats in results.items():
        table.add_row(str(size), str(stats.episodes), f"{stats.wall_s:.1f}", f"{stats.episodes_per_minute:.1f}",
                      f"{stats.episodes_per_minute / baseline:.2f}x", f"{stats.env_s / stats.wall_s:.1%}",
                      f"{stats.policy_s / stats.wall_s:.2%}")
    Console().print(table)


if __name__ == "__main__":
    main()
