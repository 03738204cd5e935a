"""A shipped pack, as a new user gets it: install it into a fresh CLIGYM_HOME filtered to a few projects, then run
the oracle and a no-op through `CLIGym-v0` on a random sample of the installed tasks (target: 1.0 and 0.0 on all).

Run: `.venv/bin/python benchmarks/pack_check.py [--pack cligym-v1] [--projects a,b,c | --random-projects 3]
[--sample 20] [--seed 0] [--envs 4]`. The home is a new temporary folder (kept with `--home DIR`), so nothing
installed or built before is reused except Docker's image cache; gold and task images build on first reset.
Prints install time, build-and-rollout time and the rewards beside the target.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cligym_env.corpus import load_pack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pack", default="cligym-v1")
    parser.add_argument("--projects", default="", help="comma-separated; default: --random-projects of the pack")
    parser.add_argument("--random-projects", type=int, default=3)
    parser.add_argument("--sample", type=int, default=20, help="tasks to roll out (of those installed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--home", type=Path, default=None, help="default: a new temporary folder")
    args = parser.parse_args()
    pack = load_pack(args.pack)
    rng = random.Random(args.seed)
    projects = [p for p in args.projects.split(",") if p] or rng.sample(sorted(pack.projects), args.random_projects)
    home = args.home or Path(tempfile.mkdtemp(prefix="cligym-pack-check-"))
    env = {**os.environ, "CLIGYM_HOME": str(home)}
    print(f"pack {pack.name} {pack.version}: {len(pack.breakages)} breakages from {len(pack.projects)} projects; "
          f"installing {', '.join(projects)} into {home}")
    started = time.monotonic()
    install = ["tasks", "install", args.pack, *[f"--project={p}" for p in projects]]
    subprocess.run([sys.executable, "-m", "agents.cli", *install], env=env, check=True)
    installed = time.monotonic() - started
    # the rollouts run in a child with the fresh home, so the registry and caches are the new user's
    code = f"""
import random, sys
from agents.baselines import NoopPolicy, OraclePolicy
from agents.rollout import RolloutConfig, rollout
from agents.trajectory import read_jsonl
from cligym_env.tasks import Registry
registry = Registry.default()
ids = sorted(row["id"] for row in registry.query()
             if registry.get(row["id"]).metadata.extra.get("pack") == {pack.name!r})  # not the shipped examples
chosen = random.Random({args.seed}).sample(ids, min({args.sample}, len(ids)))
for policy in (OraclePolicy(registry), NoopPolicy()):
    out = registry.path.parent / f"check-{{policy.name}}.jsonl"
    rollout(policy, chosen, out, RolloutConfig(episodes=1, envs={args.envs}), registry=registry)
    rewards = [t.reward for t in read_jsonl(out)]
    want = 1.0 if policy.name == "oracle" else 0.0
    print(f"{{policy.name}}: reward {{want}} on {{sum(r == want for r in rewards)}}/{{len(rewards)}} of "
          f"{{len(chosen)}} sampled ({{len(ids)}} installed)")
"""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    print(f"install {installed:.1f} s (no Docker); images built and both policies rolled out in "
          f"{(time.monotonic() - started) / 60:.1f} min; target: oracle 1.0 and no-op 0.0 on every sampled task")


if __name__ == "__main__":
    main()
