"""Write the issue text from the real failing run, the way a user would report it.

Two variants per breakage: without a hint, and with one sentence that points at the area (the paper's
hint / no-hint pairs). Neither names the fix: the body is the error the machine really printed.
"""

from __future__ import annotations

import random

from cligym_env.generator.validate import Validated
from cligym_env.grading import TestResult

_OPENINGS = [
    "Something changed on this machine and the {project} test suite no longer passes.",
    "After some maintenance on this box, {project}'s tests started failing.",
    "The {project} environment here is broken: its test suite fails where it used to pass.",
    "I can't get {project}'s tests to pass on this machine any more.",
]
_CLOSINGS = [
    "Please repair the environment so the whole suite passes again, without editing the tests.",
    "Could you fix the machine so the tests pass again? The tests themselves are fine.",
    "Please find what is broken and fix it; don't change the tests. The machine has no network access.",
]
MAX_TRACE_LINES = 30
CATEGORY_HINTS = {
    "file-system": "The problem is in the files on disk: something is missing, damaged or has the wrong mode.",
    "infrastructure": "The problem is in how the interpreter or its tools are set up and started on this machine.",
    "dependencies-runtime": "The problem is in the installed packages the project depends on.",
    "network-security": "The problem is in the system's name resolution, protocol or certificate configuration.",
    "source-logic": "The project's installed code does not match the released package.",
    "compatibility": "Something installed does not match the versions the project was built and tested with.",
    "concurrency": "The problem shows where the code uses threads, processes, locks or system limits.",
    "other": "The problem is outside the project's own code; compare the machine with a clean installation.",
}


def write_issue(project: str, validated: Validated, *, hint: bool, seed: int = 0) -> str:
    rng = random.Random(seed)
    run, tests = validated.broken_run, validated.tests
    example_id, example = _representative(run.results, tests.fail_to_pass)
    if example is not None:
        trace = _trim(example.details or example.message)
        title = _first_line(example.message) or f"{example_id} {example.outcome}"
        evidence = f"For example `{example_id}` {'errors' if example.outcome == 'error' else 'fails'}:"
    else:  # the runner itself broke: the evidence is what it printed
        trace = _trim(run.output)
        title = _first_line(_last_error_line(run.output)) or "the test suite does not run"
        evidence = "Running the suite prints:"
    failing = f"{len(tests.fail_to_pass)} test{'s' if len(tests.fail_to_pass) != 1 else ''} that used to pass now fail"
    still = f", while {len(tests.pass_to_pass)} still pass" if tests.pass_to_pass else ""
    parts = [
        f"# {title[:120]}",
        "",
        rng.choice(_OPENINGS).format(project=project) + f" {failing}{still}.",
        "",
        evidence,
        "",
        "```",
        trace,
        "```",
        "",
        rng.choice(_CLOSINGS),
    ]
    if hint:
        parts += ["", f"Hint: {validated.breakage.hint or CATEGORY_HINTS[validated.breakage.category]}"]
    return "\n".join(parts) + "\n"


def _representative(results: dict[str, TestResult], fail_to_pass: tuple[str, ...]) -> tuple[str, TestResult | None]:
    """The first failing selected test with a traceback, else any failure in the report (e.g. collection)."""
    failures = {t: r for t, r in results.items() if r.outcome in ("failed", "error") and (r.details or r.message)}
    for test in fail_to_pass:
        if test in failures:
            return test, failures[test]
    for test, result in sorted(failures.items()):
        return test, result
    return "", None


def _trim(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if len(lines) > MAX_TRACE_LINES:
        lines = lines[:5] + ["..."] + lines[-(MAX_TRACE_LINES - 6):]
    return "\n".join(lines)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def _last_error_line(output: str) -> str:
    errors = [line for line in output.splitlines() if "Error" in line or "error" in line]
    return errors[-1] if errors else ""
