"""Grading cost per episode: tamper-resistant grading (snapshot, fresh container, audit, trusted runner) against
the in-place grading it replaced (copy the tests into the policy's own container and run pytest there).

Run: `.venv/bin/python benchmarks/grading_cost.py [--episodes 30]`. Target: at most 1.5 s added per episode
(median). Each episode resets the env on a shipped example task, runs its oracle repair, then grades it both ways
on the same container state; the first episode (which hashes the images once and makes the harness) is left out.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from cligym_env.env import CLIGymEnv
from cligym_env.grading import grade, parse_junit
from cligym_env.runtime.shell import script_command
from cligym_env.tasks import Registry, Task, load_task

TASK = "example-missing-module"
EXAMPLES = Path(str(resources.files("cligym_env.tasks").joinpath("examples")))


def in_place(env: CLIGymEnv, task: Task) -> float:
    """What grading used to be: tests copied into the live container, pytest run by the policy's interpreter."""
    sandbox, tests = env.unwrapped.sandbox, task.tests
    started = time.perf_counter()
    sandbox.put_files(tests.directory, dict(tests.files))
    sandbox.run(f"cd {tests.workdir} && {tests.python} -m pytest -p no:cacheprovider -o junit_family=xunit1 "
                f"--rootdir={tests.rootdir} --junitxml=/tmp/junit.xml {tests.directory} >/dev/null", timeout=300)
    report = sandbox.read_file("/tmp/junit.xml")
    elapsed = time.perf_counter() - started
    assert report and all(parse_junit(report).get(t) == "passed" for t in tests.selected), "in-place grade failed"
    return elapsed


def tamper_resistant(env: CLIGymEnv, task: Task) -> float:
    started = time.perf_counter()
    result = grade(env.unwrapped.sandbox, task.tests, references=env.unwrapped._references())
    elapsed = time.perf_counter() - started
    assert result.reward == 1.0 and not result.tamper, f"grade failed: {result}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cligym-bench-")) / "registry"
    shutil.copytree(EXAMPLES, folder)
    task = load_task(folder / TASK)
    env = CLIGymEnv(Registry(folder), task_ids=[TASK])
    old, new = [], []
    try:
        for episode in range(args.episodes + 1):
            env.reset(options={"task_id": TASK})
            env.step(script_command(task.solution))
            timings = (in_place(env, task), tamper_resistant(env, task))  # new grade snapshots the same state
            if episode:
                old.append(timings[0])
                new.append(timings[1])
    finally:
        env.close()
        shutil.rmtree(folder.parent, ignore_errors=True)
    added = statistics.median(new) - statistics.median(old)
    print(f"{'grading (s per episode)':<34} {'median':>8} {'p90':>8}   ({args.episodes} episodes, task {TASK})")
    print(f"{'in place (before)':<34} {statistics.median(old):>8.2f} {_p90(old):>8.2f}")
    print(f"{'snapshot + fresh container + audit':<34} {statistics.median(new):>8.2f} {_p90(new):>8.2f}")
    print(f"\nadded per episode: {added:.2f} s ({'meets' if added <= 1.5 else 'MISSES'} the 1.5 s target)")


def _p90(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.9) - 1)]


if __name__ == "__main__":
    main()
