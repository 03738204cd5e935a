"""The first grade on a task image nobody graded before, as the generator meets it for every candidate it validates
(and a user for every task of a freshly installed pack): the audit looks up the task image's paths on demand, against
the baseline that hashed every protected file and wheel of that image first.

Run: `.venv/bin/python benchmarks/first_grade.py [--episodes 8]`. Each episode resets the env on a shipped example
task, runs its oracle repair and grades it once with each audit on the same container state, after forgetting the
task image's cached manifest (so each grade is a first one); the reference (gold) manifest stays cached, as it does
for a project's many candidates.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from cligym_env import paths
from cligym_env.env import CLIGymEnv
from cligym_env.grading import audit, grade
from cligym_env.runtime.shell import script_command
from cligym_env.tasks import Registry, load_task

TASK = "example-missing-module"
EXAMPLES = Path(str(resources.files("cligym_env.tasks").joinpath("examples")))


def forget(image_id: str) -> None:
    """Drop the task image's cached manifest and every wheel read, on disk and in memory, so the next grade is a
    first one (the task image's wheels are its own here: the example builds its project FROM a bare base)."""
    caches = [*(paths.cache_dir() / "manifests").glob(f"{image_id}*.json.gz"),
              *(paths.cache_dir() / "wheels").glob("*.json.gz")]
    for cache in caches:
        audit._documents.pop(str(cache), None)
        cache.unlink()
    audit._wheels.clear()


def timed_grade(env: CLIGymEnv, eager: bool) -> float:
    original = audit.manifest

    def whole_image(*args, lazy=(), **kwargs):  # type: ignore[no-untyped-def]
        return original(*args, **kwargs)  # the baseline: every image hashed whole

    if eager:
        audit.manifest = whole_image
    try:
        started = time.perf_counter()
        result = grade(env.unwrapped.sandbox, env.unwrapped.task.tests, references=env.unwrapped._references())
        elapsed = time.perf_counter() - started
    finally:
        audit.manifest = original
    assert result.reward == 1.0 and not result.tamper, f"grade failed: {result}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cligym-bench-")) / "registry"
    shutil.copytree(EXAMPLES, folder)
    task = load_task(folder / TASK)
    env = CLIGymEnv(Registry(folder), task_ids=[TASK])
    eager, lazy = [], []
    try:
        for episode in range(args.episodes + 1):
            env.reset(options={"task_id": TASK})
            env.step(script_command(task.solution))
            image_id = env.unwrapped.sandbox.client.images.get(env.unwrapped.sandbox.image).id.split(":")[-1]
            timings = []
            for whole in (episode % 2 == 0, episode % 2 == 1):  # alternate which goes first
                forget(image_id)
                timings.append((whole, timed_grade(env, eager=whole)))
            if episode:  # the first builds the harness and the gold's manifest
                for whole, seconds in timings:
                    (eager if whole else lazy).append(seconds)
    finally:
        env.close()
        shutil.rmtree(folder.parent, ignore_errors=True)
    print(f"{'first grade of a task image (s)':<40} {'median':>8} {'max':>8}   ({args.episodes} episodes, task {TASK})")
    print(f"{'task image hashed whole (before)':<40} {statistics.median(eager):>8.2f} {max(eager):>8.2f}")
    print(f"{'task image looked up on demand':<40} {statistics.median(lazy):>8.2f} {max(lazy):>8.2f}")
    print(f"\nsaved per new task image: {statistics.median(eager) - statistics.median(lazy):.2f} s")


if __name__ == "__main__":
    main()
