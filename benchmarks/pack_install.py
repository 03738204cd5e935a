"""`cligym tasks install` of a shipped pack on a fresh machine (empty cache and registry), against the baseline that
asks pip for every pinned file, one gold after the other, and writes each task with its own index transaction.

Run: `.venv/bin/python benchmarks/pack_install.py [--pack cligym-v1] [--projects 3] [--rounds 1]`. Each round
installs the same randomly chosen projects twice, once each way (the order alternating), each into a home of its
own, so neither finds the other's downloads.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator
from unittest import mock

from cligym_env.corpus import install
from cligym_env.corpus.pack import load_pack
from cligym_env.generator import index
from cligym_env.tasks import Registry


@contextmanager
def baseline() -> Iterator[None]:
    """pip for every file (an index without JSON pages), one gold at a time, one transaction per task."""
    def one_by_one(self, tasks, *, overwrite=False, on_added=lambda task_id: None):  # type: ignore[no-untyped-def]
        return [self.add(task, overwrite=overwrite) for task in tasks]

    with mock.patch.object(index, "files", lambda project: {}), mock.patch.object(install, "FETCHERS", 1), \
            mock.patch.object(Registry, "add_many", one_by_one):
        yield


def timed_install(pack_name: str, projects: list[str], old: bool) -> tuple[float, int]:
    home = Path(tempfile.mkdtemp(prefix="cligym-install-"))
    os.environ["CLIGYM_HOME"], os.environ["CLIGYM_CACHE"] = str(home), str(home / "cache")
    try:
        started = time.perf_counter()
        with baseline() if old else nullcontext():
            ids = install.install(load_pack(pack_name), Registry(home / "tasks"), projects=projects)
        return time.perf_counter() - started, len(ids)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        index.files.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pack", default="cligym-v1")
    parser.add_argument("--projects", type=int, default=3, help="random projects of the pack (0: all of them)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    everything = sorted(load_pack(args.pack).projects)
    projects = random.Random(args.seed).sample(everything, args.projects) if args.projects else everything
    timings: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(args.rounds):
        for old in (round_ % 2 == 0, round_ % 2 == 1):
            seconds, tasks = timed_install(args.pack, projects, old)
            timings[old].append(seconds)
    print(f"{args.pack}: {len(projects)} projects ({', '.join(projects)}), {tasks} tasks, {args.rounds} round(s), "
          "fresh home and cache each time")
    print(f"{'':34s}{'median s':>10s}{'per project':>13s}")
    for old, label in ((True, "baseline (pip, serial)"), (False, "cligym (index, parallel)")):
        median = statistics.median(timings[old])
        print(f"{label:34s}{median:10.1f}{median / len(projects):13.1f}")
    print(f"speed-up: {statistics.median(timings[True]) / statistics.median(timings[False]):.1f}x")


if __name__ == "__main__":
    main()
