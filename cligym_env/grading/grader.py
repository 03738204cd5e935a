"""Grade a sandbox against its task's hidden tests: copy them in, run them, read the JUnit report.

Tests are copied in only now, so the policy never sees them; they run in a fresh shell, so what the
policy did to its own shell (aliases, cwd, variables) does not count, only the state of the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cligym_env.grading.junit import ReportError, TestResult, parse_junit_results
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks.task import Tests

REPORT_PATH = "/cligym/results/junit.xml"


@dataclass(frozen=True)
class TestRun:
    results: dict[str, TestResult]  # every test in the report
    output: str  # the test command's output (capped)
    error: str = ""  # why no report could be read, if so

    @property
    def outcomes(self) -> dict[str, str]:
        return {test: result.outcome for test, result in self.results.items()}


@dataclass(frozen=True)
class Grade:
    reward: float
    resolved: bool
    tests: dict[str, str] = field(default_factory=dict)  # selected test id -> outcome ("missing" if absent)
    run: TestRun | None = None


def run_tests(sandbox: Sandbox, tests: Tests) -> TestRun:
    """Copy the tests in, run their command in a fresh shell, and read the report it wrote."""
    sandbox.put_files(tests.directory, dict(tests.files))
    command = f"rm -rf /cligym/results; mkdir -p /cligym/results; {tests.command}"
    env = {"CLIGYM_JUNIT": REPORT_PATH, "CLIGYM_TESTS": tests.directory}
    result = sandbox.run_fresh(command, timeout=tests.timeout, env=env)
    report = sandbox.read_file(REPORT_PATH)
    if report is None:
        why = "timed out" if result.timed_out else f"exited with {result.exit_code}"
        return TestRun({}, result.output, f"the test command {why} and wrote no JUnit report at {REPORT_PATH}")
    try:
        return TestRun(parse_junit_results(report), result.output)
    except ReportError as error:
        return TestRun({}, result.output, str(error))


def grade(sandbox: Sandbox, tests: Tests, *, partial_credit: bool = False) -> Grade:
    """Reward 1.0 iff every fail-to-pass and pass-to-pass test passes (or the fraction passing, if asked)."""
    run = run_tests(sandbox, tests)
    outcomes = run.outcomes
    selected = {test: outcomes.get(test, "missing") for test in tests.selected}
    passing = sum(outcome == "passed" for outcome in selected.values())
    resolved = bool(selected) and passing == len(selected)
    reward = 1.0 if resolved else (passing / len(selected) if partial_credit and selected else 0.0)
    return Grade(reward, resolved, selected, run)
