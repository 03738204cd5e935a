"""Prove a candidate breakage is a real, stable, solvable task, or say why not.

Every kept task passes all of: the broken image builds; gold-passing tests now fail (fail-to-pass) and the
rest still pass (pass-to-pass); a second fresh container fails the same way (no flakiness); the oracle
repair, run in a fresh broken container and graded as an episode is, makes every selected test pass without the
audit flagging it; and the runner itself still works (unless the operator meant to break it and the error says so,
or the suite's own conftest.py no longer imports: then every test fails, as a user sees it).

Then the cheap shortcuts a policy could learn instead of diagnosing (`shortcut_scripts`: reinstall the project from
wheelhouse; reinstall everything there) are tried, each in a fresh broken container and graded the same way (the
broadest first: one that fails rules out those it contains); the ones that solve the task are recorded, so a run can
report their share or drop such tasks.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, replace
from typing import Callable

import docker

from cligym_env.generator.types import Breakage, GoldEnvironment
from cligym_env.grading import Grade, TestRun, grade, run_tests, run_tests_on_image
from cligym_env.images.build import ImageBuildError, build_environment
from cligym_env.images.conceal import conceal
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.runtime.shell import script_command
from cligym_env.tasks.task import Environment, Tests
from cligym_env.error import Rejected

logger = logging.getLogger(__name__)

REPAIR_TIMEOUT = 600.0
SHORTCUT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Validated:
    """A candidate that passed every check, with what the task needs from the runs."""

    breakage: Breakage
    environment: Environment
    image: str
    tests: Tests  # fail_to_pass and pass_to_pass filled in
    broken_run: TestRun  # the real failing run the issue text is written from
    repair_verified: bool = True  # False only when asked to keep a candidate whose repair failed
    shortcuts: tuple[str, ...] = ()  # the shortcut_scripts that also solve it (a policy could skip the diagnosis)


def shortcut_scripts(gold: GoldEnvironment) -> dict[str, str]:
    """name -> the one command a policy that learnt "reinstall the package" would type; none without a wheelhouse."""
    probe = gold.probe
    if not probe.wheelhouse:
        return {}
    pip = f"{shlex.quote(probe.python)} -m pip install --force-reinstall --no-deps --no-index --find-links " \
          f"{shlex.quote(probe.wheelhouse)}"
    return {"reinstall-all": f"{pip} {shlex.quote(probe.wheelhouse)}/*.whl",
            "reinstall-project": f"{pip} {shlex.quote(gold.project)}"}


# A shortcut that installs cleanly and still leaves the task unsolved proves the narrower ones unsolved: it redoes
# what they do, with the same flags, and besides only restores more of the gold's wheels (saves a container, a
# snapshot and a test run for most candidates).
NARROWER = {"reinstall-all": ("reinstall-project",)}


def broken_environment(gold: GoldEnvironment, breakage: Breakage) -> Environment:
    """The broken image is the gold image plus the recorded Dockerfile lines, wrapped so that neither file times
    nor package-manager logs give away what they changed (`cligym_env.images.conceal`)."""
    return Environment(f"FROM {gold.image}\n{conceal(breakage.dockerfile)}", {}, gold.environment.network)


def validate(client: docker.DockerClient, gold: GoldEnvironment, breakage: Breakage, *,
             verify_repair: bool = True, shortcuts: bool = True, narrow: bool = False,
             known: Callable[[Breakage, tuple[str, ...]], bool] = lambda breakage, fail_to_pass: False) -> Validated:
    """Every check above; with `verify_repair=False` a failed repair is recorded instead of rejected;
    `shortcuts=False` skips trying the shortcuts (they cost a fresh container and a test run each);
    `narrow=True` rejects, before any repair is tried, a breakage that leaves no test passing; `known(breakage,
    fail_to_pass)` says, once the first run has told what fails, that the task is kept already (rejected as a
    "duplicate" before the runs and containers that are most of a candidate's cost)."""
    try:
        environment = broken_environment(gold, breakage)
        image = build_environment(client, environment, what=f"{gold.project}/{breakage.operator}")
    except ImageBuildError as error:  # the build's last output lines say why; the first line echoes the command
        raise Rejected("build-failed", " | ".join(str(error).splitlines()[-3:])[-250:]) from None
    except ValueError as error:
        raise Rejected("build-failed", str(error)[-250:]) from None
    gold_passing = set(gold.passing)

    first = _run(client, image, gold, breakage)
    if first.error and not (breakage.extra.get("breaks_runner") or conftest_failed(first)):
        raise Rejected("runner-broken", f"nothing ran: {first.error}; {first.output[-300:]}")
    outcomes = first.outcomes
    fail_to_pass = tuple(sorted(t for t in gold_passing if outcomes.get(t) != "passed"))
    pass_to_pass = tuple(sorted(t for t in gold_passing if outcomes.get(t) == "passed"))
    if not fail_to_pass:
        raise Rejected("breaks-nothing", "every gold-passing test still passes")
    if narrow and not pass_to_pass:
        raise Rejected("whole-suite", "no test passes any more, and this project has its share of such tasks")
    if known(breakage, fail_to_pass):
        raise Rejected("duplicate", "same target, category and failing tests as a task kept already")
    if first.error and not first.output.strip():
        raise Rejected("runner-broken", "the runner broke without any error message")

    second = _run(client, image, gold, breakage)
    if {t: second.outcomes.get(t) == "passed" for t in gold_passing} != {t: t in pass_to_pass for t in gold_passing}:
        raise Rejected("flaky", "a second broken container gave different results")

    tests = replace(gold.tests, fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass)
    try:
        repaired = _repair(client, image, gold, breakage, tests)
        if repaired.failure:
            raise Rejected("oracle-failed", f"grading the repair failed: {repaired.failure.message}")
        if repaired.tamper:  # the grader would give the oracle 0: no policy could be shown the task is solvable
            raise Rejected("oracle-flagged", f"the grader's audit flags the repair: {repaired.tamper[0]}")
        still_failing = [t for t, outcome in repaired.tests.items() if outcome != "passed"]
        if still_failing:
            run = repaired.run
            raise Rejected("oracle-failed", f"{len(still_failing)} selected tests fail after the repair, "
                                            f"e.g. {still_failing[0]}; {run.error or run.output[-300:] if run else ''}")
    except Rejected:
        if verify_repair:
            raise
        return Validated(breakage, environment, image, tests, first, repair_verified=False,
                         shortcuts=_shortcuts(client, image, gold, tests) if shortcuts else ())
    return Validated(breakage, environment, image, tests, first,
                     shortcuts=_shortcuts(client, image, gold, tests) if shortcuts else ())


def conftest_failed(run: TestRun) -> bool:
    """pytest stopped before any test because a `conftest.py` of the suite failed to import (usually importing the
    broken project): the runner works, and every test fails, just as a user running the suite sees it."""
    return run.exit_code == 4 and ("ImportError while loading conftest" in run.output
                                   or "in _importconftest" in run.output)


def _shortcuts(client: docker.DockerClient, image: str, gold: GoldEnvironment, tests: Tests) -> tuple[str, ...]:
    """The shortcuts that make every selected test pass, each in a fresh broken container, graded as an episode.

    The tests run unaudited first: the audit can only lower a grade, and it is the dearest part of grading a
    reinstall (every file rewritten), which most tasks' tests already say has not solved them."""
    solved, ruled_out = [], set()
    for name, command in shortcut_scripts(gold).items():
        if name in ruled_out:
            continue
        with Sandbox(image, task_id=f"gen-{gold.project}"[:40], client=client) as sandbox:
            if sandbox.run(command, timeout=SHORTCUT_TIMEOUT).exit_code != 0:
                continue
            outcomes = run_tests(sandbox, tests).outcomes
            if all(outcomes.get(test) == "passed" for test in tests.selected) and \
                    grade(sandbox, tests, references=[gold.image]).resolved:
                solved.append(name)
            else:
                ruled_out.update(NARROWER.get(name, ()))
    logger.debug("%s: shortcuts that solve %s: %s", gold.project, image, solved or "none")
    return tuple(solved)


def _run(client: docker.DockerClient, image: str, gold: GoldEnvironment, breakage: Breakage) -> TestRun:
    return run_tests_on_image(client, image, gold.tests, task_id=f"gen-{gold.project}"[:40])


def _repair(client: docker.DockerClient, image: str, gold: GoldEnvironment, breakage: Breakage,
            tests: Tests) -> Grade:
    """The oracle repair in a fresh broken container, graded exactly as an episode is (audit included)."""
    with Sandbox(image, task_id=f"gen-{gold.project}"[:40], client=client) as sandbox:
        result = sandbox.run(script_command(breakage.solution), timeout=REPAIR_TIMEOUT)
        if result.exit_code != 0:
            raise Rejected("oracle-failed", f"the repair script exited with {result.exit_code}: "
                                            f"{result.output[-400:]}")
        return grade(sandbox, tests, references=[gold.image])
