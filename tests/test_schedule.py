"""The scheduler spends a project's budget on operators that bite, covers every category first, and gives up on
operators that keep breaking nothing (pure logic; the real generation runs through it in test_generator.py)."""

from __future__ import annotations

from cligym_env.generator.pipeline import Outcome
from cligym_env.generator.schedule import Scheduler
from cligym_env.generator.types import Breakage


def _candidate(operator: str, category: str, target: str) -> Breakage:
    return Breakage(operator, category, target, "", "RUN true\n", "true\n")


def _outcome(project: str, operator: str, category: str, status: str, reason: str = "", **fields) -> Outcome:
    return Outcome(project, operator, category, "t", status, reason, **fields)


def test_an_operator_that_bites_elsewhere_goes_first_within_its_category():
    candidates = [_candidate("weak", "other", "a"), _candidate("strong", "other", "b")]
    history = [_outcome("p1", "weak", "other", "rejected", "breaks-nothing") for _ in range(4)]
    history += [_outcome("p1", "strong", "other", "accepted", pass_to_pass=3) for _ in range(2)]
    scheduler = Scheduler("p2", candidates, history=history)
    assert scheduler.next().operator == "strong"
    assert scheduler.next().operator == "weak"
    assert scheduler.next() is None


def test_every_category_is_tried_once_before_values_take_over():
    candidates = [_candidate("good", "file-system", f"f{i}") for i in range(3)] + [_candidate("poor", "other", "o")]
    history = [_outcome("p1", "good", "file-system", "accepted", pass_to_pass=1) for _ in range(5)]
    history += [_outcome("p1", "poor", "other", "rejected", "breaks-nothing") for _ in range(3)]
    history += [_outcome("p1", "poor", "other", "accepted", pass_to_pass=1)]
    scheduler = Scheduler("p2", candidates, history=history)
    assert [scheduler.next().category for _ in range(2)] == ["file-system", "other"]
    # failing again and again elsewhere (value below EXPLORE_FLOOR): no bonus, and one useless try here ends it
    history += [_outcome("p1", "poor", "other", "rejected", "breaks-nothing") for _ in range(6)]
    scheduler = Scheduler("p2", candidates, history=history)
    assert [scheduler.next().operator for _ in range(3)] == ["good"] * 3 and scheduler.next().operator == "poor"
    scheduler.record(_outcome("p2", "poor", "other", "rejected", "breaks-nothing"))
    assert scheduler.dead("poor")


def test_reinstall_solvable_and_whole_suite_tasks_count_for_less():
    scheduler = Scheduler("p", [], history=[
        _outcome("q", "diagnosis", "x", "accepted", pass_to_pass=2),
        _outcome("q", "reinstall", "x", "accepted", shortcuts=["reinstall-project"], pass_to_pass=2),
        _outcome("q", "whole", "x", "accepted", pass_to_pass=0)])
    assert scheduler.value("diagnosis") > scheduler.value("reinstall")
    assert scheduler.value("whole", narrow=True) < scheduler.value("whole") == scheduler.value("diagnosis")


def test_an_operator_that_broke_nothing_twice_here_is_not_tried_again_and_own_results_weigh_more():
    candidates = [_candidate("a", "other", "1"), _candidate("b", "other", "2")]
    history = [_outcome("here", "a", "other", "rejected", "breaks-nothing") for _ in range(2)]
    history += [_outcome("elsewhere", "a", "other", "accepted", pass_to_pass=1) for _ in range(3)]
    history += [_outcome("elsewhere", "b", "other", "rejected", "flaky")]
    scheduler = Scheduler("here", candidates, history=history)
    assert scheduler.dead("a") and not scheduler.dead("b")
    assert scheduler.next().operator == "b"
    assert scheduler.next() is None and len(scheduler) == 1


def test_outcomes_recorded_during_the_run_change_the_order():
    candidates = [_candidate("a", "c", "1"), _candidate("a", "c", "2"), _candidate("b", "c", "3")]
    scheduler = Scheduler("p", candidates)
    first = scheduler.next()
    assert first.operator == "a"  # no record: the seeded order decides
    scheduler.record(_outcome("p", "a", "c", "rejected", "breaks-nothing"))
    scheduler.record(_outcome("p", "b", "c", "accepted", pass_to_pass=1))
    assert scheduler.next().operator == "b"


def test_once_breakages_inside_the_project_break_the_whole_suite_the_rest_wait_in_narrow_mode():
    from cligym_env.generator.schedule import inside_project
    from cligym_env.generator.types import Distribution, GoldProbe
    from dataclasses import fields

    site = "/opt/venv/lib/python3.11/site-packages"
    values = {f.name: () for f in fields(GoldProbe)}
    values |= {"python": "/opt/venv/bin/python", "site_packages": site, "project_module": "tiny",
               "distributions": (Distribution("tiny", "1.0", ("tiny",), (f"{site}/tiny/__init__.py",)),)}
    inside = inside_project(GoldProbe(**{k: v for k, v in values.items() if k in {f.name for f in fields(GoldProbe)}}))
    assert inside(f"{site}/tiny/core.py") and inside("tiny") and inside("tiny@pth") and inside("tiny:no-record")
    assert not inside(f"{site}/tinyx/core.py") and not inside("/tmp:file") and not inside("click")

    candidates = [_candidate("op1", "c1", f"{site}/tiny/a.py"), _candidate("op2", "c1", "/etc/x")]
    history = [Outcome("p", "op3", "c2", "tiny", "rejected", "whole-suite: no test passes"),
               Outcome("p", "op4", "c3", f"{site}/tiny/b.py", "accepted", pass_to_pass=0)]
    scheduler = Scheduler("p", candidates, history=history, inside=inside)
    assert scheduler.next(narrow=True).target == "/etc/x"
    assert Scheduler("p", candidates, history=history, inside=inside).next(narrow=False).target.endswith("a.py")


def test_an_operator_that_broke_the_whole_suite_twice_is_dead_only_once_narrow_breakages_are_needed():
    history = [Outcome("p", "wide", "c", "t", "accepted", pass_to_pass=0),
               Outcome("p", "wide", "c", "u", "rejected", "whole-suite: no test passes any more")]
    scheduler = Scheduler("p", [_candidate("wide", "c", "v")], history=history)
    assert scheduler.dead("wide", narrow=True) and not scheduler.dead("wide", narrow=False)
    assert scheduler.next(narrow=True) is None and scheduler.next(narrow=False).target == "v"
