"""The one data type for a task, used by the registry, the environment, the grader and the generator.

A task is a broken environment (a Dockerfile plus its build context), an instruction written like a user's
issue, hidden tests that decide success, and an oracle solution that proves the task can be solved.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from cligym_env.error import TaskError

TASK_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")

CATEGORIES = (
    "file-system",
    "infrastructure",
    "dependencies-runtime",
    "network-security",
    "source-logic",
    "compatibility",
    "concurrency",
    "other",
)
SPLITS = ("train", "heldout")  # a pack's projects: trained on, or kept for evaluation only (metadata.extra["split"])
UNVERIFIED = "agentic-unverified"  # generator prefix of tasks kept although their repair was never shown to work


@dataclass(frozen=True)
class Environment:
    """How to build the broken image: Dockerfile text plus build-context files (relative path -> bytes)."""

    dockerfile: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    network: bool = False  # containers run with networking off unless the task needs it

    def content_hash(self) -> str:
        """Hash of everything that goes into `docker build`, so equal environments share one image."""
        digest = hashlib.sha256()
        digest.update(b"Dockerfile\0" + self.dockerfile.encode() + b"\0")
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return digest.hexdigest()


RUNNERS = ("pytest", "script", "harbor", "terminal-bench")
# Runners of foreign formats judge a whole run, not named tests: their one selected "test" is the verdict.
VERDICTS = {"harbor": "harbor::reward", "terminal-bench": "terminal-bench::resolved"}


@dataclass(frozen=True)
class Tests:
    """Hidden tests: copied into a grading container of the final filesystem only, then run.

    runner "pytest" (every task cligym makes): cligym's trusted harness runs pytest with the environment's
    interpreter `python` (an absolute path) in `workdir`, node ids relative to `rootdir` (default: workdir),
    loading only the pytest `plugins` named (modules), with `pytest_args` before the tests folder.
    runner "script" (tasks from elsewhere): `command` runs in the environment's bash and must write a JUnit XML
    report to `$CLIGYM_JUNIT`; the tests are in `$CLIGYM_TESTS`. Test ids are pytest node ids.
    runner "harbor" (Harbor tasks): `command` (e.g. `bash /tests/test.sh`) runs in the image's working directory
    and writes `/logs/verifier/reward.txt` or `reward.json`; reward 1 passes the one selected id `harbor::reward`.
    runner "terminal-bench" (Terminal-Bench 1.0 tasks, the paper's rows): `command` runs with `$TEST_DIR` set
    and its pytest `-rA` output is parsed with Terminal-Bench's rule (every parsed test passed, at least one):
    that passes the one selected id `terminal-bench::resolved`. Both see the tests in `directory` (`/tests`).
    """

    runner: str = "pytest"
    python: str = ""
    workdir: str = "/"
    rootdir: str = ""
    pytest_args: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    command: str = ""
    files: Mapping[str, bytes] = field(default_factory=dict)
    directory: str = "/cligym/tests"
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()
    timeout: float = 600.0

    def problem(self) -> str:
        """What is wrong with these settings, or '' (the caller names the task)."""
        if self.runner not in RUNNERS:
            return f"tests.runner is {self.runner!r}; choose one of {', '.join(RUNNERS)}"
        if self.runner == "pytest" and not (self.python.startswith("/") and self.workdir.startswith("/")):
            return ("tests.python and tests.workdir must be absolute paths in the container for the pytest runner "
                    f"(got python={self.python!r}, workdir={self.workdir!r})")
        if self.runner == "script" and not self.command:
            return "tests.command is empty; the script runner needs the command that writes $CLIGYM_JUNIT"
        if self.runner in VERDICTS:
            if not self.command:
                return f"tests.command is empty; the {self.runner} runner needs the command that runs its tests"
            if self.fail_to_pass != (VERDICTS[self.runner],) or self.pass_to_pass:
                return (f"the {self.runner} runner judges the whole run: set fail_to_pass = "
                        f'["{VERDICTS[self.runner]}"] and pass_to_pass = [] (got {list(self.selected)})')
        if not self.directory.startswith("/") or self.directory.rstrip("/") in ("", "/"):
            return f"tests.directory {self.directory!r} must be an absolute folder other than /"
        return ""

    @property
    def selected(self) -> tuple[str, ...]:
        return self.fail_to_pass + self.pass_to_pass


@dataclass(frozen=True)
class Metadata:
    project: str = ""
    category: str = "other"
    difficulty: str = "medium"
    hint: bool = False
    generator: str = "manual"
    created_at: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    id: str
    instruction: str
    environment: Environment
    tests: Tests
    solution: str
    metadata: Metadata = field(default_factory=Metadata)

    def __post_init__(self) -> None:
        if not TASK_ID_PATTERN.match(self.id):
            raise TaskError(
                f"task id {self.id!r} is invalid: use lower-case letters, digits, '.', '_' and '-' "
                "(at most 128 characters, starting with a letter or digit)"
            )
        if self.metadata.category not in CATEGORIES:
            raise TaskError(
                f"task {self.id}: category {self.metadata.category!r} is unknown; "
                f"choose one of {', '.join(CATEGORIES)}"
            )
        if not self.tests.fail_to_pass:
            raise TaskError(f"task {self.id}: tests.fail_to_pass is empty; a task needs at least one failing test")
        if self.tests.problem():
            raise TaskError(f"task {self.id}: {self.tests.problem()}")

    def summary(self) -> dict[str, Any]:
        """The short form shown by `cligym tasks list --json` and stored in the registry index."""
        return {
            "id": self.id,
            "project": self.metadata.project,
            "category": self.metadata.category,
            "difficulty": self.metadata.difficulty,
            "hint": self.metadata.hint,
            "generator": self.metadata.generator,
            "split": self.metadata.extra.get("split"),
            "created_at": self.metadata.created_at,
            "fail_to_pass": len(self.tests.fail_to_pass),
            "pass_to_pass": len(self.tests.pass_to_pass),
        }
