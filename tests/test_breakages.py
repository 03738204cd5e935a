"""Breakages that bite: what the gold suite uses, operators aimed at it, the reinstall shortcuts, issue text a
person would write, deduplication that survives a race, and the typed generation options.

Pure checks use a hand-made probe (tests/test_operators.py's); the probe and shortcut checks run on the real
gold image of the examples' project (tests/conftest.py).
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w
import tomllib
from typer.testing import CliRunner

from cligym_env.error import UsageError
from cligym_env.generator.command import check_config
from cligym_env.generator.gold import load_gold, save_gold
from cligym_env.generator.issue import STYLES, display_id, error_line, write_issue
from cligym_env.generator.operators import OPERATORS, REGISTRY, propose
from cligym_env.generator.pipeline import Outcome, RunLog, generate_for_gold, package, store, task_base_id
from cligym_env.generator.probe import probe_gold
from cligym_env.generator.types import Breakage, GenerateConfig, GoldEnvironment
from cligym_env.generator.validate import Validated
from cligym_env.grading import TestResult as Result, TestRun as Run
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks import Registry
from cligym_env.tasks.task import Environment, Tests as Suite
from test_operators import SITE, fake_probe

# --- what the gold suite uses, and operators aimed at it --------------------------------------------------------


def test_the_probe_records_what_the_gold_suite_really_uses(docker_client, gold):
    with Sandbox(gold.image, task_id="probe-test", client=docker_client) as sandbox:
        probe = probe_gold(sandbox, gold.tests, "inventory")
    assert {"inventory", "inventory.core", "unitconv"} <= set(probe.used_modules)
    assert "_pytest.main" not in probe.used_modules  # the runner alone loads it: left out
    assert "/etc/inventory/settings.ini" in probe.used_files  # a config file the code opens
    assert "/app/inventory/core.py" in probe.used_files
    assert "/app/bin/inventory-report" in probe.used_executables  # a program a test starts
    assert ({"open", "import", "subprocess.Popen"} <= set(probe.used_events)
            and "socket.connect" not in probe.used_events)
    assert not any(path.endswith("/libc.so.6") for path in probe.used_libraries)  # pytest alone maps it
    assert not any(path.startswith(gold.tests.directory.rstrip("/") + "/") for path in probe.used_files)
    assert not any("_cligym_usage" in path for path in (*probe.used_files, *probe.used_modules))


def test_operators_aim_at_what_the_gold_run_used_and_old_probes_at_everything() -> None:
    util, lib = f"{SITE}/proj/util.py", "/lib/x86_64-linux-gnu/libsqlite3.so.0"
    full = fake_probe()
    aimed = fake_probe(used_files=tuple(f for f in full.used_files if f != util),
                       used_modules=tuple(m for m in full.used_modules if m not in (
                           "fastdep", "_multiprocessing", "subprocess", "multiprocessing", "signal", "asyncio")),
                       used_libraries=tuple(p for p in full.shared_libraries if p != lib))
    old = fake_probe(used_files=(), used_modules=(), used_libraries=(), used_executables=(), used_events=())

    def targets(probe):
        return {b.target for op in OPERATORS for b in op.breakages(probe, random.Random(0))}

    every, narrow, legacy = targets(full), targets(aimed), targets(old)
    for unused in (util, f"{util}:empty", "fastdep", f"{lib}:delete", "_multiprocessing:delete",
                   "ignore-sigchld@pth", "processes@pth"):
        assert unused in every and unused in legacy, unused
        assert unused not in narrow, unused
    assert f"{SITE}/proj/core.py" in narrow and f"{SITE}/certifi/cacert.pem:delete" in narrow
    assert not REGISTRY["damage-package-data"].available(old)  # only where usage shows the data file read
    assert len(narrow) < len(every)
    quiet = targets(fake_probe(used_events=("open", "import", "exec")))  # no process, socket or lookup
    for unused in ("ignore-sigchld@pth", "processes@pth", "sockets@pth", "/etc/nsswitch.conf:hosts=dns",
                   "spawn@pth", "http_proxy@pth", "/etc/ld.so.preload:/usr/local/lib/libfaketime.so.1"):
        assert unused in every and unused not in quiet, unused


def test_a_recipe_saved_before_usage_was_recorded_still_loads(tmp_path: Path) -> None:
    gold = GoldEnvironment("proj", "1.2.3", "cligym/gold-proj:x", Environment("FROM scratch\n"),
                           Suite(python="/opt/venv/bin/python", files={"test_a.py": b"def test_a(): pass\n"}),
                           ("test_a.py::test_a",), fake_probe())
    folder = save_gold(gold, tmp_path / "gold")
    assert load_gold(folder).probe == gold.probe  # the usage fields round-trip
    document = tomllib.loads((folder / "gold.toml").read_text())
    document["probe"] = {k: v for k, v in document["probe"].items() if not k.startswith("used_")}
    (folder / "gold.toml").write_text(tomli_w.dumps(document))
    probe = load_gold(folder).probe
    assert not probe.usage_known and probe.distributions == gold.probe.distributions


# --- shortcuts -------------------------------------------------------------------------------------------------

UNINSTALL = Breakage("uninstall", "dependencies-runtime", "unitconv", "pip-uninstalled unitconv",
                     "RUN pip uninstall -y unitconv", "pip install --no-index --find-links /opt/wheelhouse unitconv",
                     hint="Look at the installed packages.")


def test_a_shortcut_solvable_breakage_is_dropped_when_asked(docker_client, gold, tmp_path):
    registry, log = Registry(tmp_path / "registry"), RunLog(tmp_path / "run.jsonl")
    [outcome] = generate_for_gold(docker_client, registry, gold, [UNINSTALL], log, max_tasks=1, workers=1, seed=0,
                                  shortcuts="drop")
    # reinstalling everything from the wheelhouse puts unitconv back; reinstalling the project alone does not
    assert outcome.status == "rejected" and outcome.shortcuts == ["reinstall-all"], outcome
    assert outcome.reason == "shortcut-solvable: reinstall-all" and len(registry) == 0


# --- issue text ------------------------------------------------------------------------------------------------


def validated(operator: str = "uninstall", results: dict[str, Result] | None = None,
              output: str = "") -> Validated:
    breakage = replace(UNINSTALL, operator=operator)
    tests = Suite(python="/opt/venv/bin/python", workdir="/project", directory="/project/tests",
                  files={"tests/test_cli.py": b"def test_a(): pass\n"},
                  fail_to_pass=("tests/test_cli.py::test_a", "tests/test_cli.py::test_b"),
                  pass_to_pass=("tests/test_io.py::test_c",))
    collection = Result("error", "collection failure",
                            "tests/test_cli.py:1: in <module>\n    import unitconv\n"
                            "E   ModuleNotFoundError: No module named 'unitconv'")
    results = results if results is not None else {"tests/test_cli.py::::tests.test_cli": collection,
                                                   "tests/test_io.py::test_c": Result("passed")}
    return Validated(breakage, Environment("FROM x\n"), "img", tests, Run(results, output))


def test_each_task_gets_its_own_wording_and_a_rerun_the_same() -> None:
    texts = {write_issue("proj", validated(), hint=False, seed=f"0:task-{i}") for i in range(12)}
    assert len(texts) >= 6
    assert write_issue("proj", validated(), hint=False, seed="0:a") == write_issue("proj", validated(), hint=False,
                                                                                 seed="0:a")
    markers = {"report": "## What happens", "steps": "Steps to reproduce", "story": "The first one I looked at",
               "terse": "proj: 2 tests"}
    seen = {style for style, marker in markers.items() for text in texts if marker in text}
    assert seen == set(STYLES)


def test_the_counts_agree_in_number() -> None:
    two, one = validated(), validated()
    one = replace(one, tests=replace(one.tests, fail_to_pass=one.tests.fail_to_pass[:1]))
    texts = [write_issue("proj", v, hint=False, seed=f"0:{i}") for v in (two, one) for i in range(12)]
    assert any("2 tests that used to pass now fail, while 1 still passes." in text for text in texts[:12])
    assert any("1 test that used to pass now fails, while 1 still passes." in text for text in texts[12:])


def test_titles_name_the_real_error_and_test_ids_are_well_formed() -> None:
    for seed in range(8):
        text = write_issue("proj", validated(), hint=False, seed=seed)
        title = text.splitlines()[0]
        assert "ModuleNotFoundError" in title and "collection failure" not in title, title
        assert "::::" not in text and "tests.test_cli" not in text
        assert "tests/test_cli.py::test_a" in text or "tests/test_cli.py::test_b" in text or "test_a" in title
    assert display_id("tests/test_cli.py::::tests.test_cli") == "tests/test_cli.py"
    assert display_id("test_root.py::::test_root") == "test_root.py"
    assert display_id("tests/test_cli.py::TestA::test_b[1]") == "tests/test_cli.py::TestA::test_b[1]"
    assert display_id("tests/test_cli.py::test_cli") == "tests/test_cli.py::test_cli"  # a real test of that name
    assert error_line("x\nE   ValueError: bad\n  more") == "ValueError: bad"


def test_examples_come_only_from_tests_that_passed_in_gold() -> None:
    results = {"tests/test_cli.py::test_a": Result("failed", "AssertionError: 1 != 2", "E   AssertionError: 1 != 2"),
               "tests/test_flaky.py::test_z": Result("failed", "OSError: never passed in gold",
                                                         "E   OSError: never passed in gold")}
    for seed in range(8):
        text = write_issue("proj", validated(results=results), hint=True, seed=seed)
        assert "test_z" not in text and "OSError" not in text
        assert "AssertionError: 1 != 2" in text and text.rstrip().splitlines()[-1].startswith("Hint: ")


# --- deduplication ---------------------------------------------------------------------------------------------


def _gold() -> GoldEnvironment:
    return GoldEnvironment("proj", "1.2.3", "cligym/gold-proj:x", Environment("FROM scratch\n"),
                           Suite(python="/opt/venv/bin/python"), ("tests/test_cli.py::test_a",), fake_probe())


def test_one_breakage_found_by_two_operators_is_kept_once(tmp_path: Path) -> None:
    registry, gold = Registry(tmp_path / "registry"), _gold()
    first, second = validated("delete-module-file"), validated("truncate-module-file")
    assert task_base_id("proj", first.breakage, first.tests.fail_to_pass) == \
        task_base_id("proj", second.breakage, second.tests.fail_to_pass)
    outcomes = [Outcome("proj", v.breakage.operator, v.breakage.category, v.breakage.target, "rejected")
                for v in (first, second)]
    for outcome, candidate in zip(outcomes, (first, second)):
        store(registry, outcome, candidate, package(gold, candidate, seed=0))
    assert [o.status for o in outcomes] == ["accepted", "duplicate"] and len(registry) == 2  # + the hint variant


def test_a_write_race_between_processes_ends_in_a_duplicate_not_an_error(tmp_path: Path, monkeypatch) -> None:
    """Each thread plays a separate process: its own Registry object, no shared lock."""
    import contextlib

    from cligym_env.generator import pipeline

    monkeypatch.setattr(pipeline, "_STORE_LOCK", contextlib.nullcontext())
    gold, candidate = _gold(), validated()
    tasks = package(gold, candidate, seed=0)

    class Late(Registry):  # checked before the other process's rename landed
        def __contains__(self, task_id: object) -> bool:
            return False

    outcomes = [Outcome("proj", "uninstall", "dependencies-runtime", "unitconv", "rejected") for _ in range(6)]
    barrier = threading.Barrier(len(outcomes))

    def write(outcome: Outcome) -> None:
        barrier.wait()
        store(Late(tmp_path / "registry"), outcome, candidate, tasks)

    threads = [threading.Thread(target=write, args=(outcome,)) for outcome in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(o.status for o in outcomes) == ["accepted"] + ["duplicate"] * 5
    assert len(Registry(tmp_path / "registry")) == 2


# --- typed options ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, named", [({"mode": "magic"}, "--mode"), ({"shortcuts": "maybe"}, "--shortcuts"),
                                            ({"categories": ("plumbing",)}, "--categories"),
                                            ({"mode": "agentic"}, "--llm"), ({"workers": 0}, "--workers")])
def test_bad_generation_options_are_usage_errors(changes: dict, named: str) -> None:
    with pytest.raises(UsageError, match=named):
        check_config(GenerateConfig(**changes))


def test_the_cli_turns_a_bad_shortcuts_value_into_one_line(tmp_path: Path) -> None:
    from cligym_env.cli import app

    result = CliRunner().invoke(app, ["generate", "--shortcuts", "maybe", "--registry", str(tmp_path / "r")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--shortcuts 'maybe': use keep or drop" in result.output


def test_propose_still_covers_every_category_on_an_aimed_probe() -> None:
    assert {b.category for b in propose(fake_probe(), random.Random(3))} == {op.category for op in OPERATORS}


def test_a_conftest_that_no_longer_imports_is_every_test_failing_not_a_broken_runner(docker_client, gold):
    """pytest exits 4 before any test when the suite's conftest.py cannot import the broken package: a real
    whole-suite breakage (the oracle repair and the no-op still tell apart), not a runner the task broke."""
    from cligym_env.generator.validate import validate

    tests = replace(gold.tests, files={**gold.tests.files, "conftest.py": b"import unitconv\n"})
    with_conftest = replace(gold, tests=tests)
    done = validate(docker_client, with_conftest, UNINSTALL, shortcuts=False)
    assert done.broken_run.exit_code == 4 and done.broken_run.error and not done.tests.pass_to_pass
    assert set(done.tests.fail_to_pass) == set(gold.passing) and done.repair_verified
