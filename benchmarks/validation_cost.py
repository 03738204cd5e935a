"""The cost of validating candidates (`cligym generate`'s inner loop), against the baseline that grades every
shortcut with its audit and finds a duplicate only after every check.

Run: `.venv/bin/python benchmarks/validation_cost.py [--project cachetools] [--candidates 4] [--seed 0]`. Builds
(or reuses) the project's gold, takes the first candidates the scheduler would try on a fresh run, adds one that
repeats the first under another operator's name (as another operator finding the same breakage does: 4-6% of the
candidates in real runs), and generates them twice into fresh registries, once each way, the order alternating.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import docker

from cligym_env.generator import pipeline
from cligym_env.generator import validate as validation
from cligym_env.generator.gold import build_gold
from cligym_env.generator.operators import propose
from cligym_env.generator.pipeline import RunLog, generate_for_gold
from cligym_env.generator.schedule import Scheduler, inside_project
from cligym_env.generator.types import Breakage, GoldEnvironment
from cligym_env.grading import TestResult, TestRun
from cligym_env.runtime.docker_client import connect
from cligym_env.tasks import Registry


@contextmanager
def baseline() -> Iterator[None]:
    """Every shortcut graded with its audit (no unaudited test run first); duplicates found when stored."""
    def all_passing(sandbox: Any, tests: Any) -> TestRun:
        return TestRun({test: TestResult("passed") for test in tests.selected}, "")

    def unaware(*args: Any, known: Any = None, **kwargs: Any) -> validation.Validated:
        return validation.validate(*args, **kwargs)

    with mock.patch.object(validation, "run_tests", all_passing), mock.patch.object(pipeline, "validate", unaware):
        yield


def run(client: docker.DockerClient, gold: GoldEnvironment, candidates: list[Breakage],
        old: bool) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory(prefix="cligym-validation-") as scratch:
        started = time.perf_counter()
        with baseline() if old else nullcontext():
            outcomes = generate_for_gold(client, Registry(Path(scratch) / "tasks"), gold, candidates,
                                         RunLog(Path(scratch) / "run.jsonl"), max_tasks=len(candidates),
                                         workers=1, seed=0)
        return time.perf_counter() - started, [f"{o.operator}:{o.status}" for o in outcomes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", default="cachetools")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    client = connect()
    gold = build_gold(args.project, client=client)
    scheduler = Scheduler(gold.project, propose(gold.probe, random.Random(args.seed)), history=[],
                          inside=inside_project(gold.probe))
    chosen = [c for c in (scheduler.next(False) for _ in range(args.candidates)) if c is not None]
    candidates = [*chosen, replace(chosen[0], operator=f"{chosen[0].operator}-again")]
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        for old in (round_ % 2 == 0, round_ % 2 != 0):
            seconds, statuses = run(client, gold, candidates, old)
            times[old].append(seconds)
            print(f"round {round_ + 1} {'baseline' if old else 'this code':9s} {seconds:6.1f} s  {' '.join(statuses)}")
    new, old = min(times[False]), min(times[True])
    print(f"\n{len(candidates)} candidates on {gold.project} (one repeating another), best of {args.rounds}:")
    print(f"  this code {new:6.1f} s ({new / len(candidates):5.1f} s each)   baseline {old:6.1f} s "
          f"({old / len(candidates):5.1f} s each)   {old / new:.2f}x")


if __name__ == "__main__":
    main()
