"""Choose the trajectories worth training on (as the paper does: 417 successes -> 291 kept).

Kept: resolved episodes with fewer than `max_steps` commands, no tampering found by the grader's audit, no
shortcut, and not a duplicate. A shortcut is a
command that learns the answer from somewhere a real user's machine would not offer it: the grading tests, the
package manager's logs (which name what the breakage changed), or the VCS history (which shows the breaking edit).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

from agents.trajectory import Trajectory

DEFAULT_TESTS_DIRS = ("/cligym/tests",)
PACKAGE_LOGS = re.compile(
    r"/var/log/(?:dpkg\.log|apt\b|alternatives\.log)"  # what dpkg and apt changed, and when
    r"|/var/lib/dpkg/status-old"  # dpkg's state before its last change
    r"|\.cache/pip\b|\bpip3?\s+cache\b|\bpip[\w.-]*\.log\b")  # pip's cache and logs: what was installed before
VCS_HISTORY = re.compile(
    r"\bgit\s+(?:-C\s+\S+\s+|--?[\w-]+(?:=\S+)?\s+)*(?:log|reflog|show|whatchanged)\b"
    r"|\.git/(?:logs\b|ORIG_HEAD)")


def shortcut(command: str, tests_dirs: Sequence[str] = DEFAULT_TESTS_DIRS) -> str | None:
    """Why `command` is a shortcut, or None."""
    if any(directory.rstrip("/") in command for directory in tests_dirs) or "CLIGYM_TESTS" in command:
        return "reads the grading tests"
    if PACKAGE_LOGS.search(command):
        return "reads package-manager logs"
    if VCS_HISTORY.search(command):
        return "reads VCS history"
    return None


def curate(trajectories: Iterable[Trajectory], *, max_steps: int = 20,
           tests_dirs: Sequence[str] = DEFAULT_TESTS_DIRS) -> tuple[list[Trajectory], Counter[str]]:
    """The kept trajectories, in order, and how many were dropped for each reason."""
    kept: list[Trajectory] = []
    dropped: Counter[str] = Counter()
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for trajectory in trajectories:
        reason = _why_dropped(trajectory, max_steps, tests_dirs, seen)
        if reason:
            dropped[reason] += 1
            continue
        seen.add((trajectory.task_id, tuple(trajectory.commands)))
        kept.append(trajectory)
    return kept, dropped


def _why_dropped(trajectory: Trajectory, max_steps: int, tests_dirs: Sequence[str],
                 seen: set[tuple[str, tuple[str, ...]]]) -> str | None:
    if trajectory.tamper:
        return "tampered with grading"
    if not trajectory.resolved:
        return "not resolved"
    if len(trajectory.steps) >= max_steps:
        return f"{max_steps} or more steps"
    for command in trajectory.commands:
        if reason := shortcut(command, tests_dirs):
            return f"shortcut: {reason}"
    if (trajectory.task_id, tuple(trajectory.commands)) in seen:
        return "duplicate"
    return None
