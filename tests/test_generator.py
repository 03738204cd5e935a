"""Validation, issue writing and the generation loop, on a real gold image (the examples' healthy project).

Operators and gold images from PyPI projects have their own tests; here the candidates are written by
hand so each validation verdict is exercised on purpose.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from cligym_env.generator.pipeline import RunLog, generate_for_gold, interleave
from cligym_env.generator.report import build_report, to_markdown, write_report
from cligym_env.generator.types import Breakage
from cligym_env.generator.validate import Rejected, validate
from cligym_env.tasks import Registry

def breakage(operator: str, dockerfile: str, solution: str, category: str = "other", **extra: str) -> Breakage:
    return Breakage(operator, category, f"target-{operator}", f"{operator} for the test", dockerfile, solution,
                    hint="Look at the installed packages.", extra=dict(extra))


UNINSTALL = breakage("uninstall", "RUN pip uninstall -y unitconv",
                     "pip install --no-index --find-links /opt/wheelhouse unitconv", "dependencies-runtime")


def test_a_real_breakage_is_validated(docker_client, gold):
    validated = validate(docker_client, gold, UNINSTALL)
    assert validated.tests.fail_to_pass == ("test_inventory.py::test_report", "test_inventory.py::test_report_command")
    assert len(validated.tests.pass_to_pass) == 3
    assert validated.environment.dockerfile.startswith(f"FROM {gold.image}\n")
    assert validated.shortcuts == ("reinstall-all",)  # the wheelhouse holds unitconv; the project is not a wheel


def test_a_shortcut_that_fails_rules_out_the_narrower_ones(docker_client, gold, monkeypatch):
    """Reinstalling every wheel leaves a lost execute bit as it was, so reinstalling only the project is not tried;
    and as its tests fail, it is not audited: one graded container (the repair) and one unaudited test run."""
    from cligym_env.generator import validate as module
    from cligym_env.grading import grade, run_tests

    graded, tested = [], []
    monkeypatch.setattr(module, "grade", lambda *args, **kwargs: graded.append(args) or grade(*args, **kwargs))
    monkeypatch.setattr(module, "run_tests", lambda *args: tested.append(args) or run_tests(*args))
    candidate = breakage("no-exec", "RUN chmod -x /app/bin/inventory-report", "chmod +x /app/bin/inventory-report",
                         "permissions")
    validated = validate(docker_client, gold, candidate)
    assert validated.shortcuts == () and (len(graded), len(tested)) == (1, 1)


def test_a_breakage_kept_already_is_a_duplicate_after_one_test_run(docker_client, gold, tmp_path, monkeypatch):
    """Another operator finding the same breakage is told so by its first run: no second run, repair or shortcut."""
    from cligym_env.generator import validate as module

    registry, log = Registry(tmp_path / "registry"), RunLog(tmp_path / "run.jsonl")
    [first] = generate_for_gold(docker_client, registry, gold, [UNINSTALL], log, max_tasks=1, workers=1, seed=1)
    runs, real_run = [], module._run
    monkeypatch.setattr(module, "_run", lambda *args: runs.append(args) or real_run(*args))
    monkeypatch.setattr(module, "_repair", lambda *args: pytest.fail("a duplicate was repaired"))
    again = replace(UNINSTALL, operator="uninstall-again")  # same target, category and failing tests
    [second] = generate_for_gold(docker_client, registry, gold, [again], log, max_tasks=2, workers=1, seed=1)
    assert (first.status, second.status, len(runs), len(registry)) == ("accepted", "duplicate", 1, 2)


@pytest.mark.parametrize("candidate, reason", [
    (breakage("harmless", "RUN touch /tmp/nothing", "true"), "breaks-nothing"),
    (breakage("no-repair", "RUN chmod -x /app/bin/inventory-report", "echo 'not a fix'"), "oracle-failed"),
    (breakage("failing-repair", "RUN chmod -x /app/bin/inventory-report", "exit 4"), "oracle-failed"),
    (breakage("bad-build", "RUN echo nothing to mutate in /app >&2; exit 9; : " + "long " * 120, "true"),
     "build-failed"),
    (breakage("runner", "RUN rm -f /opt/venv/bin/python*", "true"), "runner-broken"),
])
def test_bad_candidates_are_rejected_with_the_reason(docker_client, gold, candidate, reason):
    with pytest.raises(Rejected) as caught:
        validate(docker_client, gold, candidate)
    assert caught.value.reason == reason
    if reason == "build-failed":  # why, from the build's output, within the 300 characters a run log keeps
        assert "nothing to mutate in /app" in str(caught.value)[:300]


def test_results_that_change_between_runs_are_flaky(docker_client, gold, monkeypatch):
    """Two fresh containers disagree (a real flaky breakage is random, so the runs are scripted here)."""
    from cligym_env.generator import validate as module
    from cligym_env.grading import TestResult, TestRun

    scripted = iter([{"test_inventory.py::test_total": "failed"}, {}])

    def scripted_run(*args, **kwargs) -> TestRun:
        outcomes = next(scripted)
        return TestRun({test: TestResult(outcomes.get(test, "passed")) for test in gold.passing}, "")

    monkeypatch.setattr(module, "_run", scripted_run)
    with pytest.raises(Rejected) as caught:
        validate(docker_client, gold, UNINSTALL)
    assert caught.value.reason == "flaky"


def test_generation_writes_validated_tasks_that_the_env_serves(docker_client, gold, tmp_path):
    registry = Registry(tmp_path / "registry")
    log = RunLog(tmp_path / "run.jsonl")
    candidates = [UNINSTALL, breakage("harmless", "RUN true", "true"),
                  breakage("chmod", "RUN chmod -x /app/bin/inventory-report", "chmod +x /app/bin/inventory-report",
                       "file-system")]
    outcomes = generate_for_gold(docker_client, registry, gold, candidates, log, max_tasks=5, workers=2, seed=1)
    assert sorted(o.status for o in outcomes) == ["accepted", "accepted", "rejected"]
    assert len(registry) == 4  # hint and no-hint variants of two breakages
    task = registry.get(next(o.task_ids[0] for o in outcomes if o.operator == "uninstall"))
    assert "ModuleNotFoundError: No module named 'unitconv'" in task.instruction
    assert "pip install" not in task.instruction  # the fix is never leaked
    assert "Hint:" in registry.get(task.id + "-hint").instruction and "Hint:" not in task.instruction

    # Resumed: nothing is tried twice.
    assert generate_for_gold(docker_client, registry, gold, candidates, RunLog(log.path), max_tasks=5, workers=2,
                             seed=1) == []

    # Served by CLIGym-v0: the oracle solves it, the no-op does not.
    from agents.baselines import NoopPolicy, OraclePolicy
    from agents.rollout import run_episode
    from cligym_env.env import CLIGymEnv

    env = CLIGymEnv(registry)
    assert run_episode(env, OraclePolicy(registry), task_id=task.id).reward == 1.0
    assert run_episode(env, NoopPolicy(), task_id=task.id).reward == 0.0
    env.close()

    report = build_report(RunLog(log.path).outcomes, wall_seconds=60.0, client=docker_client,
                          gold_images={"inventory": gold.image})
    assert report.candidates == 3 and report.accepted == 2 and report.yield_rate == pytest.approx(2 / 3)
    assert report.categories == {"file-system": 1, "dependencies-runtime": 1}
    assert report.rejections == {"breaks-nothing": 1}
    assert 0 <= report.disk_mb_per_task < 5
    assert "| yield | 67%" in to_markdown(report)
    assert report.solved_by_any_shortcut == 1 and report.solved_by_project_reinstall == 0  # the uninstall one
    assert report.with_pass_to_pass == 2 and "| with pass-to-pass tests left | 2 (100%" in to_markdown(report)
    assert {path.name for path in write_report(report, tmp_path / "report")} >= {"report.json", "report.md"}


def test_interleave_covers_categories_first():
    candidates = [breakage(f"a{i}", "RUN true", "true", "file-system") for i in range(5)] + \
                 [breakage("b", "RUN true", "true", "concurrency"), breakage("c", "RUN true", "true", "other")]
    ordered = interleave(candidates, random.Random(0))
    assert {c.category for c in ordered[:3]} == {"file-system", "concurrency", "other"}
    assert sorted(c.operator for c in ordered) == sorted(c.operator for c in candidates)
