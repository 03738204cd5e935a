"""Write the issue text from the real failing run, the way a person would report it.

Two variants per breakage: without a hint, and with one sentence that points at the area (the paper's
hint / no-hint pairs). Neither names the fix: the body is the error the machine really printed. The wording,
the layout (`STYLES`) and the example are drawn with a seed of the task's own, so the issues of one run differ;
the example is always a test that passed in the gold environment, named by a well-formed pytest id, and the
title is the real error line, not the runner's "collection failure".
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from cligym_env.generator.validate import Validated

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
OPENINGS = (
    "Something changed on this machine and the {project} test suite no longer passes.",
    "After some maintenance on this box, {project}'s tests started failing.",
    "The {project} environment here is broken: its test suite fails where it used to pass.",
    "I can't get {project}'s tests to pass on this machine any more.",
    "Since yesterday the {project} checks on this host are red, and nobody touched the project's code.",
    "Our {project} setup on this server regressed: a suite that was green now fails.",
    "Running {project}'s tests here fails, while the same version passes on a clean machine.",
    "Heads-up: {project} is unhappy on this machine.",
)
CLOSINGS = (
    "Please repair the environment so the whole suite passes again, without editing the tests.",
    "Could you fix the machine so the tests pass again? The tests themselves are fine.",
    "Please find what is broken and fix it; don't change the tests. The machine has no network access.",
    "I'd like this box back to a working state; the test files are known good, so please leave them alone.",
    "Can you track down what is wrong with the environment and fix it? Offline only, I'm afraid.",
    "Any help getting the suite green again is appreciated (no changes to the tests, please).",
)
EXPECTATIONS = (
    "These tests passed on this machine before.", "Expected: the suite passes, as it did until recently.",
    "On a fresh install of the same version everything passes.", "Nothing in the project itself changed.",
)
_ERROR_LINE = re.compile(r"^(?:E\s+)?((?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Warning|Failure|Interrupt)"
                         r"\b(?::.*)?)$")


@dataclass(frozen=True)
class Evidence:
    """What the issue quotes: a gold-passing test that now fails (or nothing), its error line and trace."""

    test: str  # well-formed pytest id, "" when the runner itself broke
    verb: str  # fails | errors | no longer runs
    error: str  # the real error line (title material)
    trace: str


def write_issue(project: str, validated: Validated, *, hint: bool, seed: int | str = 0) -> str:
    rng = random.Random(f"{seed}")
    evidence = gather(validated, rng)
    tests = validated.tests
    one = len(tests.fail_to_pass) == 1
    failing = f"{len(tests.fail_to_pass)} test{'' if one else 's'} that used to pass now fail{'s' if one else ''}"
    still = f", while {len(tests.pass_to_pass)} still pass{'es' if len(tests.pass_to_pass) == 1 else ''}" \
        if tests.pass_to_pass else ""
    counts = f"{failing}{still}."
    title = _title(project, evidence, rng)
    body = STYLES[rng.choice(sorted(STYLES))](project, evidence, counts, tests.workdir, rng)
    parts = [f"# {title[:120]}", "", body.strip(), "", rng.choice(CLOSINGS)]
    if hint:
        parts += ["", f"Hint: {validated.breakage.hint or CATEGORY_HINTS[validated.breakage.category]}"]
    return "\n".join(parts) + "\n"


def gather(validated: Validated, rng: random.Random) -> Evidence:
    """A fail-to-pass test (it passed in gold) with its failure text; where its module no longer collects, the
    collection error of its file; where nothing ran, the runner's output."""
    run, fail_to_pass = validated.broken_run, validated.tests.fail_to_pass
    failures = {t: r for t, r in run.results.items() if r.outcome in ("failed", "error") and (r.details or r.message)}
    direct = [t for t in fail_to_pass if t in failures]
    if direct:
        test = rng.choice(direct[:20])
        result = failures[test]
        return Evidence(display_id(test), "errors" if result.outcome == "error" else "fails",
                        error_line(result.details or result.message) or _first_line(result.message),
                        _trim(result.details or result.message))
    collected = {_file(t): r for t, r in failures.items() if is_collection(t)}
    orphans = [t for t in fail_to_pass if _file(t) in collected]
    if orphans:
        test = rng.choice(orphans[:20])
        result = collected[_file(test)]
        return Evidence(display_id(test), "no longer runs", error_line(result.details or result.message),
                        _trim(result.details or result.message))
    test = display_id(rng.choice(fail_to_pass[:20])) if fail_to_pass else ""
    return Evidence(test, "no longer runs" if run.error else "fails", error_line(run.output) or run.error,
                    _trim(run.output))


def display_id(test_id: str) -> str:
    """A pytest node id as a person would paste it: no empty parts (`a.py::::b`), no module name repeated as a
    test (`tests/test_cli.py::tests.test_cli` is the file itself, i.e. its collection)."""
    raw = test_id.split("::")
    parts = [part for part in raw if part]
    if len(parts) == 2 and parts[0].endswith(".py") and parts[1] == _module_name(parts[0]) and \
            ("" in raw or "." in parts[1]):  # pytest's JUnit entry for the file's collection
        parts = parts[:1]
    return "::".join(parts)


def is_collection(test_id: str) -> bool:
    """The report's entry for a file that failed to import (no test function named)."""
    return display_id(test_id) == _file(test_id) and _file(test_id).endswith(".py")


def error_line(text: str) -> str:
    """The last line that reads like a raised error (`ModuleNotFoundError: No module named 'x'`)."""
    found = [m.group(1).strip() for line in text.splitlines() if (m := _ERROR_LINE.match(line.strip()))]
    return found[-1] if found else ""


def _title(project: str, evidence: Evidence, rng: random.Random) -> str:
    error = evidence.error or f"{evidence.test or 'the test suite'} {evidence.verb}"
    short = evidence.test.rsplit("::", 1)[-1] if evidence.test else "the test suite"
    return rng.choice((
        error, f"{project}: {error}", f"{short} {evidence.verb}: {error}", f"Tests broken on this machine: {error}",
        f"{project} suite fails with {error.split(':')[0]}",
    ))


def _report(project: str, evidence: Evidence, counts: str, workdir: str, rng: random.Random) -> str:
    return "\n".join([
        "## What happens", "", f"{rng.choice(OPENINGS).format(project=project)} {counts}", "",
        *([f"`{evidence.test}` {evidence.verb}:"] if evidence.test else ["Running the suite prints:"]), "",
        "```", evidence.trace, "```", "", "## Expected", "", rng.choice(EXPECTATIONS)])


def _terse(project: str, evidence: Evidence, counts: str, workdir: str, rng: random.Random) -> str:
    lead = f"{project}: {counts}" + (f" E.g. `{evidence.test}`:" if evidence.test else "")
    return "\n".join([lead, "", "```", evidence.trace, "```"])


def _story(project: str, evidence: Evidence, counts: str, workdir: str, rng: random.Random) -> str:
    seen = f"The first one I looked at, `{evidence.test}`, {evidence.verb}; this is what I get:" if evidence.test \
        else "The run prints this:"
    return "\n".join([f"{rng.choice(OPENINGS).format(project=project)} {rng.choice(EXPECTATIONS)} {counts}", "",
                      seen, "", "```", evidence.trace, "```"])


def _steps(project: str, evidence: Evidence, counts: str, workdir: str, rng: random.Random) -> str:
    target = f" {evidence.test}" if evidence.test else ""
    return "\n".join([
        rng.choice(OPENINGS).format(project=project), "", "Steps to reproduce:", "",
        f"1. `cd {workdir}`", f"2. `python -m pytest{target}`", "", "Actual result:", "", "```", evidence.trace, "```",
        "", f"Expected result: it passes, as it used to. {counts}"])


STYLES = {"report": _report, "terse": _terse, "story": _story, "steps": _steps}


def _module_name(path: str) -> str:
    return ".".join(PurePosixPath(path).with_suffix("").parts)


def _file(test_id: str) -> str:
    return test_id.split("::", 1)[0]


def _trim(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if len(lines) > MAX_TRACE_LINES:
        lines = lines[:5] + ["..."] + lines[-(MAX_TRACE_LINES - 6):]
    return "\n".join(lines)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""
