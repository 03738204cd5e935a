"""Grading of imported tasks by their own scripts: Harbor's reward file and Terminal-Bench's pytest-output rule.

The grader calls `run_external` in its fresh grading container (a snapshot of the policy's file system, after the
audit), so steps 1, 3 and 4 of grading hold here too; the task's script runs with the environment's bash, as its
own harness would run it. Everything the verdict is read from is made anew first: the tests folder (by the
grader), and Harbor's `/logs/verifier`, so no reward file the policy planted survives.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING

from cligym_env.grading.junit import TestResult
from cligym_env.runtime.execute import run_argv
from cligym_env.runtime.sandbox import tar_files
from cligym_env.tasks.task import VERDICTS, Tests
from cligym_env.error import GradingFailure

if TYPE_CHECKING:
    from cligym_env.grading.grader import TestRun, _GradingBox

RUNNERS = tuple(VERDICTS)
VERIFIER_DIR = "/logs/verifier"  # Harbor's `EnvironmentPaths.verifier_dir`
MAX_REWARD_BYTES = 1 << 20
_SUMMARY = re.compile(r"=+\s*short test summary info\s*=+", re.IGNORECASE)
# Terminal-Bench's PytestParser: these count as passed, every other status (FAILED, ERROR, XPASS) as failed.
_TB_PASSING = {"PASSED", "XFAIL", "SKIPPED"}
_TB_STATUSES = _TB_PASSING | {"FAILED", "ERROR", "XPASS"}


def run_external(box: "_GradingBox", tests: Tests) -> "TestRun":
    """Run a harbor or terminal-bench task's own test script in the grading box and read its verdict."""
    from cligym_env.grading.grader import Failure, TestRun

    directory = tests.directory.rstrip("/") or "/"
    b = box.mount.busybox
    if tests.runner == "harbor":  # fresh, so only what test.sh writes now is read
        box._busybox("sh", "-c", f"{b} rm -rf {VERIFIER_DIR} && {b} mkdir -p {VERIFIER_DIR} /logs/agent")
    box.container.put_archive(directory, tar_files(tests.files))
    env = {"TEST_DIR": directory, "CLIGYM_TESTS": directory, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_ADDOPTS": ""}
    result = run_argv(box.client.api, box.container.id, ["/bin/bash", "-c", tests.command], timeout=tests.timeout,
                      env=env, workdir=_workdir(box), max_output_bytes=box.sandbox.limits.max_output_bytes)
    if result.timed_out:
        raise GradingFailure(Failure("grading-timeout", f"the tests did not finish within {tests.timeout:g} s",
                                     policy_caused=True))
    if tests.runner == "terminal-bench":
        parsed = parse_pytest_summary(result.output)
        resolved = bool(parsed) and all(outcome == "passed" for outcome in parsed.values())
        results = {name: TestResult(outcome) for name, outcome in parsed.items()}
        results[VERDICTS[tests.runner]] = TestResult("passed" if resolved else "failed")
        error = "" if parsed else "no test results in the output (no pytest -rA short test summary)"
        return TestRun(results, result.output, error, result.exit_code)
    reward, outcomes, error = _harbor_reward(box)
    results = {name: TestResult(outcome) for name, outcome in outcomes.items()}
    if reward is not None:
        results[VERDICTS[tests.runner]] = TestResult("passed" if reward >= 1.0 else "failed",
                                                      message=f"reward {reward:g}")
    return TestRun(results, result.output, error, result.exit_code)


def parse_pytest_summary(output: str) -> dict[str, str]:
    """Test name -> passed/failed from pytest's `-rA` short summary, as Terminal-Bench's PytestParser reads it.

    Only the text after the "short test summary info" banner counts; each line is `STATUS path::name[ - text]`,
    the name is what follows the first `::`; no banner means nothing was parsed (Terminal-Bench raises then)."""
    parts = _SUMMARY.split(output, maxsplit=1)
    if len(parts) < 2:
        return {}
    results: dict[str, str] = {}
    for line in parts[1].splitlines():
        fields = line.split(maxsplit=1)
        status = fields[0].strip().strip(":") if fields else ""
        if len(fields) < 2 or status not in _TB_STATUSES:
            continue
        name = _node_id(fields[1].strip()).split("::", maxsplit=1)[-1]
        if name:
            results[name] = "passed" if status in _TB_PASSING else "failed"
    return results


def _node_id(text: str) -> str:
    """The node id at the start of a summary line, without the ` - message` pytest may append. Terminal-Bench cuts
    at the last ` - `, which breaks on a message holding one once pytest stops truncating lines (it does when `CI`
    is set); the first ` - ` outside parametrize brackets is where the id ends."""
    depth = 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth <= 0 and text.startswith(" - ", index):
            return text[:index]
    return text


def _harbor_reward(box: "_GradingBox") -> tuple[float | None, dict[str, str], str]:
    """Harbor's verifier: reward.json if it exists (its numbers are rewards), else reward.txt (one number)."""
    outcomes: dict[str, str] = {}
    document = box._file(f"{VERIFIER_DIR}/reward.json", MAX_REWARD_BYTES)
    if document is not None:
        try:
            parsed = json.loads(document)
        except ValueError:
            return None, {}, f"{VERIFIER_DIR}/reward.json is not JSON"
        if not isinstance(parsed, dict):
            return None, {}, f"{VERIFIER_DIR}/reward.json is not a JSON object"
        numbers = {k: v for k, v in parsed.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        tests = parsed.get("tests") if isinstance(parsed.get("tests"), dict) else {}
        outcomes = {str(k): str(v) for k, v in tests.items() if isinstance(v, str)}
        if "reward" in numbers or len(numbers) == 1:
            return _finite(numbers.get("reward", next(iter(numbers.values())))), outcomes, ""
    text = box._file(f"{VERIFIER_DIR}/reward.txt", 4096)  # also Harbor's fallback for a reward.json without one
    if text is None:
        return None, outcomes, f"the test script wrote no reward ({VERIFIER_DIR}/reward.txt or reward.json)"
    try:
        return _finite(float(text.decode("utf-8", "replace").strip())), outcomes, ""
    except ValueError:
        return None, outcomes, f"{VERIFIER_DIR}/reward.txt is not a number: {text[:80]!r}"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _workdir(box: "_GradingBox") -> str:
    """The image's WORKDIR: Harbor execs and Terminal-Bench's shell both start there."""
    config = box.client.api.inspect_image(box.sandbox.image).get("Config") or {}
    return config.get("WorkingDir") or "/"
