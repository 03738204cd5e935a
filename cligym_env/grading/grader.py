"""Grade a sandbox against its task's hidden tests: copy them in, run them, read the JUnit report.

Tests are copied in only now, so the policy never sees them; they run in a fresh shell, so what the
policy did to its own shell (aliases, cwd, variables) does not count, only the state of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cligym_env.grading.junit import ReportError, parse_junit
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks.task import Task

REPORT_PATH = "/cligym/results/junit.xml"


@dataclass(frozen=True)
class Grade:
    reward: float
    resolved: bool
    tests: dict[str, str] = field(default_factory=dict)  # selected test id -> outcome ("missing" if absent)
    all_tests: dict[str, str] = field(default_factory=dict)  # every test in the report
    output: str = ""  # the test run's output (capped), for error messages and issue writing
    error: str = ""  # why no report could be read, if so


def run_tests(sandbox: Sandbox, task: Task) -> tuple[dict[str, str], str, str]:
    """Run the task's tests in the sandbox; return (outcomes by id, output, error)."""
    sandbox.put_files(task.tests.directory, dict(task.tests.files))
    command = f"rm -rf /cligym/results; mkdir -p /cligym/results; {task.tests.command}"
    env = {"CLIGYM_JUNIT": REPORT_PATH, "CLIGYM_TESTS": task.tests.directory}
    result = sandbox.run_fresh(command, timeout=task.tests.timeout, env=env)
    report = sandbox.read_file(REPORT_PATH)
    if report is None:
        why = "timed out" if result.timed_out else f"exited with {result.exit_code}"
        return {}, result.output, f"the test command {why} and wrote no JUnit report at {REPORT_PATH}"
    try:
        return parse_junit(report), result.output, ""
    except ReportError as error:
        return {}, result.output, str(error)


def grade(sandbox: Sandbox, task: Task, *, partial_credit: bool = False) -> Grade:
    """Reward 1.0 iff every fail-to-pass and pass-to-pass test passes (or the fraction passing, if asked)."""
    outcomes, output, error = run_tests(sandbox, task)
    selected = {test: outcomes.get(test, "missing") for test in task.tests.selected}
    passing = sum(outcome == "passed" for outcome in selected.values())
    resolved = bool(selected) and passing == len(selected)
    reward = 1.0 if resolved else (passing / len(selected) if partial_credit and selected else 0.0)
    return Grade(reward, resolved, selected, outcomes, output, error)
