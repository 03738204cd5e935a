"""Per-command overhead: the persistent shell `CLIGym-v0` uses against one docker-py `exec_run` per command.

Run: `.venv/bin/python benchmarks/step_latency.py [--commands N]`. Target: median <= 1 ms for `true`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

from cligym_env.images import BASE_IMAGE, bootstrap
from cligym_env.runtime.docker_client import connect
from cligym_env.runtime.sandbox import Sandbox


def measure(run: Callable[[str], object], command: str, count: int) -> list[float]:
    run(command)  # warm-up
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        run(command)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=300)
    args = parser.parse_args()
    client = connect()
    bootstrap(client)
    rows = []
    with Sandbox(BASE_IMAGE, task_id="bench-latency", client=client) as box:
        for command in ["true", "echo hi", "ls /usr/bin | wc -l"]:
            shell = measure(lambda text: box.run(text), command, args.commands)
            exec_run = measure(lambda text: box.container.exec_run(["bash", "-c", text]), command,
                               max(args.commands // 5, 20))
            rows.append((command, shell, exec_run))
    print(f"{'command':<22} {'persistent shell (ms)':>24} {'exec_run per command (ms)':>28} {'speed-up':>9}")
    print(f"{'':<22} {'median':>11} {'p95':>12} {'median':>14} {'p95':>13}")
    for command, shell, exec_run in rows:
        shell_median, exec_median = statistics.median(shell), statistics.median(exec_run)
        print(f"{command:<22} {shell_median:>11.3f} {_p95(shell):>12.3f} {exec_median:>14.2f} {_p95(exec_run):>13.2f}"
              f" {exec_median / shell_median:>8.0f}x")
    verdict = "meets" if statistics.median(rows[0][1]) <= 1.0 else "MISSES"
    print(f"\nmedian overhead for `true`: {statistics.median(rows[0][1]):.3f} ms ({verdict} the 1 ms target)")


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


if __name__ == "__main__":
    main()
