"""`cligym generate --mode rules`: gold environment -> proposed breakages -> validation -> tasks in the registry.

Resumable: every candidate's outcome is appended to a run log, and a restarted run skips what it already
tried. Deduplicated: a task id is derived from (project, target, category, fail-to-pass set) and not from the
operator, so the same breakage found twice (by two operators, or two runs writing one registry at once) lands on
the same id and is kept once: whoever writes second records a duplicate, never a `TaskExistsError`. A candidate
whose first test run already names a kept task stops there, as a duplicate, before the costlier checks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

import docker

from cligym_env import paths
from cligym_env.files import append_jsonl, read_jsonl
from cligym_env.generator.issue import write_issue
from cligym_env.generator.schedule import Scheduler, inside_project
from cligym_env.generator.types import EXPECTED_FAILURES, Breakage, GoldEnvironment
from cligym_env.generator.validate import Rejected, Validated, validate
from cligym_env.tasks import Metadata, Registry, Task, TaskExistsError

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One candidate's fate, as logged and reported."""

    project: str
    operator: str
    category: str
    target: str
    status: str  # accepted | rejected | duplicate
    reason: str = ""
    seconds: float = 0.0
    task_ids: list[str] = field(default_factory=list)
    image: str = ""
    tokens: int = 0  # LLM tokens spent on this candidate (agentic mode)
    shortcuts: list[str] = field(default_factory=list)  # the shortcuts that also solve it (validate.shortcut_scripts)
    fail_to_pass: int = 0
    pass_to_pass: int = 0

    @property
    def key(self) -> str:
        return f"{self.project}|{self.operator}|{self.target}"


class RunLog:
    """Append-only JSONL of outcomes (`files.append_jsonl`): the run's memory across interruptions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.outcomes = [Outcome(**record) for record in read_jsonl(path)]

    def add(self, outcome: Outcome) -> None:
        with self._lock:
            append_jsonl(self.path, [outcome.__dict__])
            self.outcomes.append(outcome)

    def tried(self) -> set[str]:
        return {outcome.key for outcome in self.outcomes}


def run_log_path(name: str) -> Path:
    return paths.home() / "runs" / f"{name}.jsonl"


def interleave(candidates: Sequence[Breakage], rng: random.Random, offset: int = 0) -> list[Breakage]:
    """Round-robin over categories (shuffled within each) so a small budget still covers them all; `offset`
    rotates which category goes first (one per project, so projects with a budget of one cover different ones)."""
    by_category: dict[str, list[Breakage]] = {}
    for candidate in candidates:
        by_category.setdefault(candidate.category, []).append(candidate)
    for group in by_category.values():
        rng.shuffle(group)
    ordered: list[Breakage] = []
    order = sorted(by_category)
    order = order[offset % len(order):] + order[:offset % len(order)] if order else order
    while any(by_category.values()):
        for category in order:
            if by_category[category]:
                ordered.append(by_category[category].pop())
    return ordered


def package(gold: GoldEnvironment, validated: Validated, *, seed: int,
            instructions: tuple[str, str] | None = None, generator: str = "") -> list[Task]:
    """The no-hint and hint variants of one validated breakage (issue texts given, or rule-written); one image."""
    breakage = validated.breakage
    base_id = task_base_id(gold.project, breakage, validated.tests.fail_to_pass)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    issue_seed = f"{seed}:{base_id}"  # each task its own wording; the same task the same text on a rerun
    tasks = []
    for hint in (False, True):
        instruction = instructions[hint] if instructions else write_issue(gold.project, validated, hint=hint,
                                                                          seed=issue_seed)
        metadata = Metadata(project=gold.project, category=breakage.category, difficulty=_difficulty(validated, hint),
                            hint=hint, generator=generator or f"rules:{breakage.operator}", created_at=created,
                            extra={"target": breakage.target, "description": breakage.description,
                                   "gold_image": gold.image, "project_version": gold.version,
                                   "repair_verified": validated.repair_verified,
                                   "solved_by_shortcuts": list(validated.shortcuts)})
        tasks.append(Task(id=base_id + ("-hint" if hint else ""), instruction=instruction,
                          environment=validated.environment, tests=validated.tests, solution=breakage.solution,
                          metadata=metadata))
    return tasks


def task_base_id(project: str, breakage: Breakage, fail_to_pass: Iterable[str]) -> str:
    """Same (project, target, category, fail-to-pass) -> same id, whichever operator found it."""
    key = json.dumps([project, breakage.target, breakage.category, sorted(fail_to_pass)])
    return f"{project}-{breakage.category}-{hashlib.sha256(key.encode()).hexdigest()[:10]}".lower()


def _difficulty(validated: Validated, hint: bool) -> str:
    steps = validated.breakage.solution.count("\n") + 1
    level = 0 if steps <= 2 else 1 if steps <= 5 else 2
    return ("easy", "medium", "hard")[max(level - hint, 0)]


_STORE_LOCK = threading.Lock()
DUPLICATE = "same target, category and failing tests"


def store(registry: Registry, outcome: Outcome, validated: Validated, tasks: list[Task]) -> None:
    """Add a validated candidate's tasks unless the same breakage is already there; update its outcome.

    Race-safe: in-process writers take a lock, and a folder another process wrote first is a duplicate."""
    outcome.image = validated.image
    outcome.shortcuts = list(validated.shortcuts)
    outcome.fail_to_pass, outcome.pass_to_pass = len(validated.tests.fail_to_pass), len(validated.tests.pass_to_pass)
    with _STORE_LOCK:
        if tasks[0].id in registry:
            outcome.status, outcome.reason = "duplicate", DUPLICATE
            return
        try:
            registry.add(tasks[0])
        except TaskExistsError:  # another process wrote the same breakage between the check and the write
            outcome.status, outcome.reason = "duplicate", DUPLICATE
            return
        for task in tasks[1:]:
            try:
                registry.add(task)
            except TaskExistsError:  # written by the same other process: the same task
                pass
    outcome.status, outcome.task_ids = "accepted", [task.id for task in tasks]


def generate_for_gold(client: docker.DockerClient, registry: Registry, gold: GoldEnvironment,
                      candidates: Iterable[Breakage], log: RunLog, *, max_tasks: int, workers: int, seed: int,
                      shortcuts: str = "keep", whole_suite_share: float = 0.5, candidates_per_task: int = 5,
                      on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Validate candidates in parallel, best first (`schedule.Scheduler`), until `max_tasks` breakages are
    accepted; return this call's outcomes.

    Narrow breakages are preferred: at most `whole_suite_share` of a project's tasks (rounded up) may leave no
    test passing; `shortcuts="drop"` rejects a candidate that a plain reinstall from the wheelhouse solves. At most
    `candidates_per_task * max_tasks` candidates are tried per project (this call and earlier ones), so a project
    that few breakages bite does not swallow the run."""
    tried = log.tried()
    ours = [o for o in log.outcomes if o.status == "accepted" and o.project == gold.project]
    accepted, whole_suite = len(ours), sum(o.pass_to_pass == 0 for o in ours)
    budget = candidates_per_task * max_tasks - sum(o.project == gold.project for o in log.outcomes)
    whole_suite_limit = math.ceil(max_tasks * whole_suite_share)
    untried = [c for c in candidates if f"{gold.project}|{c.operator}|{c.target}" not in tried]
    scheduler = Scheduler(gold.project, untried, history=log.outcomes, inside=inside_project(gold.probe))

    def known(breakage: Breakage, fail_to_pass: tuple[str, ...]) -> bool:  # a file check: safe from any thread
        return task_base_id(gold.project, breakage, fail_to_pass) in registry

    results: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        running: dict[Future, tuple[Breakage, float]] = {}
        while True:
            while len(running) < workers and accepted + len(running) < max_tasks and budget > 0:
                narrow = whole_suite >= whole_suite_limit  # spent already; the check after validation stays exact
                candidate = scheduler.next(narrow)
                if candidate is None:
                    break
                budget -= 1
                running[pool.submit(validate, client, gold, candidate, narrow=narrow, known=known)] = \
                    (candidate, time.monotonic())
            if not running:
                return results
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                candidate, started = running.pop(future)
                outcome = Outcome(gold.project, candidate.operator, candidate.category, candidate.target, "rejected")
                try:
                    validated = future.result()
                except Rejected as rejection:
                    if rejection.reason == "duplicate":  # `known` said the registry has it already
                        outcome.status, outcome.reason = "duplicate", DUPLICATE
                    else:
                        outcome.reason = str(rejection)[:300]  # "key: detail"; reports group by the key
                except EXPECTED_FAILURES as error:  # Docker, a build, the host: this candidate fails, the run goes on
                    outcome.reason = f"error: {type(error).__name__}: {str(error)[:200]}"
                except Exception:  # a bug of ours is not a rejection reason: say so and stop
                    logger.exception("validating %s %s failed with a bug in cligym", gold.project, candidate.operator)
                    raise
                else:
                    outcome.shortcuts = list(validated.shortcuts)
                    outcome.fail_to_pass = len(validated.tests.fail_to_pass)
                    outcome.pass_to_pass = len(validated.tests.pass_to_pass)
                    if shortcuts == "drop" and validated.shortcuts:
                        outcome.reason = f"shortcut-solvable: {', '.join(validated.shortcuts)}"
                    elif not validated.tests.pass_to_pass and whole_suite >= whole_suite_limit:
                        outcome.reason = (f"whole-suite: no test passes any more, and {whole_suite} of this "
                                          f"project's tasks already fail the whole suite")
                    else:
                        store(registry, outcome, validated, package(gold, validated, seed=seed))
                        accepted += outcome.status == "accepted"
                        whole_suite += outcome.status == "accepted" and not validated.tests.pass_to_pass
                outcome.seconds = round(time.monotonic() - started, 2)
                log.add(outcome)
                scheduler.record(outcome)
                results.append(outcome)
                on_outcome(outcome)
