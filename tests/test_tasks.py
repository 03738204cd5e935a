"""Task folders (load/write) and the SQLite-indexed registry."""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import sqlite3
import tomllib
from pathlib import Path
from typing import Any, Callable

import pytest
import tomli_w

from cligym_env.tasks import registry as registry_module
from cligym_env.tasks.folder import TaskExistsError, load_task, write_task
from cligym_env.tasks.registry import Registry, UnknownTaskError
from cligym_env.tasks.task import Environment, Metadata, Task, TaskError
from cligym_env.tasks.task import Tests as TaskTests  # aliased so pytest does not collect it


def make_task(task_id: str = "demo-task", **metadata: Any) -> Task:
    """A valid task with binary files in both the environment and the tests."""
    fields = dict(project="demo", category="file-system", difficulty="easy", hint=False, generator="manual",
                  created_at="2025-01-01T00:00:00Z", extra={"source": "unit", "nested": {"n": [1, 2]}})
    return Task(
        id=task_id,
        instruction="# The app crashes\r\nIt fails with `EACCES`.\n\tSee ünïcode ✓ \\ \"quotes\"",
        environment=Environment(
            dockerfile="FROM python:3.12-slim\nCOPY app /app\n",
            files={"app/main.py": b"print('hi')\n", "app/data/blob.bin": bytes(range(256)), ".env": b"A=1\r\n"},
            network=True,
        ),
        tests=TaskTests(
            runner="script", command="cd /cligym/tests &&\npytest --junitxml=\"$CLIGYM_JUNIT\" -q\r\n",
            files={"test_app.py": b"def test_ok():\n    pass\n", "fixtures/deep/raw.bin": b"\x00\xff\r\n\x80"},
            fail_to_pass=("tests/test_app.py::test_ok",),
            pass_to_pass=("tests/test_app.py::test_other", "tests/test_app.py::TestA::test_b[x-1]"),
            timeout=90,
        ),
        solution="#!/bin/bash\nset -euo pipefail\nchmod 644 /app/main.py\n",
        metadata=Metadata(**(fields | metadata)),
    )


# ----------------------------------------------------------------------------- folders


def test_round_trip_keeps_every_byte(tmp_path: Path) -> None:
    task = make_task()
    path = write_task(task, tmp_path)
    assert path == tmp_path / task.id
    assert load_task(path) == task
    assert (path / "tests" / "fixtures" / "deep" / "raw.bin").read_bytes() == b"\x00\xff\r\n\x80"
    assert (path / "instruction.md").read_bytes() == task.instruction.encode()
    assert os.access(path / "solution.sh", os.X_OK)
    assert sorted(p.name for p in tmp_path.iterdir()) == [task.id]


def test_pycache_in_tests_is_not_part_of_the_task(tmp_path: Path) -> None:
    path = write_task(make_task(), tmp_path)
    (path / "tests" / "__pycache__").mkdir()
    (path / "tests" / "__pycache__" / "test_app.pyc").write_bytes(b"\x00")
    assert load_task(path) == make_task()


def _edit_toml(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        document = tomllib.loads((path / "task.toml").read_text())
        change(document)
        (path / "task.toml").write_text(tomli_w.dumps(document))
    return edit


MALFORMED = {
    "no task.toml": (lambda p: (p / "task.toml").unlink(), ["task.toml", "missing"]),
    "no instruction": (lambda p: (p / "instruction.md").unlink(), ["instruction.md", "create it"]),
    "no Dockerfile": (lambda p: (p / "environment" / "Dockerfile").unlink(), ["environment/Dockerfile"]),
    "misnamed solution": (lambda p: (p / "solution.sh").rename(p / "solutoin.sh"),
                          ["solution.sh", "rename 'solutoin.sh'"]),
    "toml syntax": (lambda p: (p / "task.toml").write_text('id = "demo-task"\n[tests\n'),
                    ["task.toml", "invalid TOML", "line 2"]),
    "wrong type": (_edit_toml(lambda d: d["tests"].update(timeout="ten")), ["task.toml", "tests.timeout", "600"]),
    "bool type": (_edit_toml(lambda d: d["metadata"].update(hint="yes")), ["metadata.hint", "true or false"]),
    "test ids type": (_edit_toml(lambda d: d["tests"].update(fail_to_pass=[1])), ["tests.fail_to_pass"]),
    "section type": (_edit_toml(lambda d: d.update(environment="none")), ["`environment`", "[environment]"]),
    "unknown field": (_edit_toml(lambda d: d["metadata"].update(catgory="other")),
                      ["metadata.catgory", "did you mean 'category'"]),
    "unknown section": (_edit_toml(lambda d: d.update(test={})), ["unknown field `test`", "'tests'"]),
    "unknown category": (_edit_toml(lambda d: d["metadata"].update(category="filesystem")),
                         ["metadata.category", "'file-system'"]),
    "id mismatch": (_edit_toml(lambda d: d.update(id="other-task")), ["`id`", "'other-task'", "demo-task"]),
    "missing command": (_edit_toml(lambda d: d["tests"].pop("command")), ["tests.command", "script runner"]),
    "unknown runner": (_edit_toml(lambda d: d["tests"].update(runner="nose")), ["tests.runner", "'nose'", "pytest"]),
    "pytest runner without python": (_edit_toml(lambda d: d["tests"].update(runner="pytest")),
                                     ["tests.python", "absolute"]),
    "missing id": (_edit_toml(lambda d: d.pop("id")), ["required field `id`"]),
    "empty fail_to_pass": (_edit_toml(lambda d: d["tests"].update(fail_to_pass=[])),
                           ["task.toml", "tests.fail_to_pass is empty"]),
    "not utf-8": (lambda p: (p / "instruction.md").write_bytes(b"\xff\xfe"), ["instruction.md", "UTF-8"]),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_folder_error_names_file_and_field(tmp_path: Path, case: str) -> None:
    path = write_task(make_task(), tmp_path)
    break_it, expected = MALFORMED[case]
    break_it(path)
    with pytest.raises(TaskError) as caught:
        load_task(path)
    for fragment in expected:
        assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


def test_existing_id_without_overwrite_is_refused(tmp_path: Path) -> None:
    write_task(make_task(), tmp_path)
    with pytest.raises(TaskExistsError, match="overwrite=True") as caught:
        write_task(make_task(project="new"), tmp_path)
    assert isinstance(caught.value, FileExistsError) and isinstance(caught.value, TaskError)
    assert load_task(tmp_path / "demo-task").metadata.project == "demo"


def test_overwrite_replaces_folder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    write_task(make_task(), tmp_path)
    (tmp_path / "demo-task" / "tests" / "stale.txt").write_text("old")
    replacement = make_task(project="new")
    write_task(replacement, tmp_path, overwrite=True)
    assert load_task(tmp_path / "demo-task") == replacement
    assert [p.name for p in tmp_path.iterdir()] == ["demo-task"]


def test_failed_write_leaves_no_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = make_task()
    write_task(original, tmp_path)
    real_rename = os.rename

    def failing_rename(source: Any, target: Any) -> None:
        if ".tmp-" in str(source):
            raise OSError(errno.EIO, "disk on fire")
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="disk on fire"):
        write_task(make_task("fresh-task"), tmp_path)
    with pytest.raises(OSError, match="disk on fire"):
        write_task(make_task(project="new"), tmp_path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["demo-task"]
    assert load_task(tmp_path / "demo-task") == original


def test_unwritable_task_fails_before_touching_disk(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="metadata.extra"):
        write_task(make_task(extra={"bad": None}), tmp_path)
    escaping = make_task()
    escaping = Task(**{**vars(escaping), "tests": TaskTests(runner="script", command="true", files={"../x": b""},
                                                                     fail_to_pass=("t",))})
    with pytest.raises(TaskError, match=r"tests.files path '\.\./x'"):
        write_task(escaping, tmp_path)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- registry


def _registry_with_tasks(path: Path) -> Registry:
    registry = Registry(path)
    registry.add(make_task("nginx-port-conflict", project="nginx", category="network-security", difficulty="hard"))
    registry.add(make_task("net_a", project="nginx", category="network-security"))
    registry.add(make_task("netxb", project="redis", category="infrastructure", hint=True))
    registry.add(make_task("pip-broken-wheel", project="pip", category="dependencies-runtime", generator="llm"))
    return registry


def _ids(summaries: list[dict[str, Any]]) -> list[str]:
    return [summary["id"] for summary in summaries]


def test_registry_add_get_query(tmp_path: Path) -> None:
    registry = _registry_with_tasks(tmp_path / "reg")
    assert (tmp_path / "reg" / "index.sqlite").is_file()
    assert registry.get("net_a") == make_task("net_a", project="nginx", category="network-security")
    assert len(registry) == 4 and "netxb" in registry and "nope" not in registry and "../x" not in registry
    assert registry.ids() == ["net_a", "netxb", "nginx-port-conflict", "pip-broken-wheel"]
    assert _ids(registry.query(category="network-security")) == ["net_a", "nginx-port-conflict"]
    assert _ids(registry.query(project="nginx", difficulty="hard")) == ["nginx-port-conflict"]
    assert _ids(registry.query(id_prefix="net_")) == ["net_a"]  # '_' is not a wildcard
    assert _ids(registry.query(hint=True)) == ["netxb"]
    assert _ids(registry.query(generator="llm")) == ["pip-broken-wheel"]
    assert _ids(registry.query(limit=2)) == ["net_a", "netxb"]
    assert registry.query(id_prefix="pip") == [registry.get("pip-broken-wheel").summary()]
    registry.remove("netxb")
    assert "netxb" not in registry and len(registry) == 3
    assert sorted(p.name for p in (tmp_path / "reg").iterdir() if not p.name.startswith("index")) == registry.ids()


def test_unknown_id_suggests_close_ids(tmp_path: Path) -> None:
    registry = _registry_with_tasks(tmp_path)
    with pytest.raises(UnknownTaskError) as caught:
        registry.get("nginx-port-confict")
    message = str(caught.value)
    assert "unknown task id 'nginx-port-confict'" in message
    assert "nginx-port-conflict" in message and "cligym tasks list" in message
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, TaskError)
    with pytest.raises(KeyError):
        registry.remove("nope")


def test_folders_changed_by_hand_are_picked_up(tmp_path: Path) -> None:
    registry = _registry_with_tasks(tmp_path / "reg")
    write_task(make_task("copied-in", category="compatibility"), tmp_path / "elsewhere")
    shutil.copytree(tmp_path / "elsewhere" / "copied-in", tmp_path / "reg" / "copied-in")
    assert _ids(registry.query(category="compatibility")) == ["copied-in"]
    _edit_toml(lambda d: d["metadata"].update(category="concurrency"))(tmp_path / "reg" / "copied-in")
    assert _ids(registry.query(category="concurrency")) == ["copied-in"]
    shutil.rmtree(tmp_path / "reg" / "net_a")
    assert "net_a" not in registry.ids()


def test_deleted_or_corrupt_index_is_rebuilt(tmp_path: Path) -> None:
    registry = _registry_with_tasks(tmp_path)
    expected = registry.query()
    (tmp_path / "index.sqlite").unlink()
    assert Registry(tmp_path).query() == expected
    (tmp_path / "index.sqlite").write_bytes(b"this is not a database" * 100)
    assert Registry(tmp_path).query() == expected


def test_malformed_folder_is_skipped_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    registry = _registry_with_tasks(root)
    shutil.copytree(write_task(make_task("broken"), tmp_path / "elsewhere"), root / "broken")
    (root / "broken" / "task.toml").write_text("id = [\n")
    (root / "half").mkdir()
    assert len(registry.query()) == 4
    problems = dict(registry.problems())
    assert set(problems) == {root / "broken", root / "half"}
    assert "task.toml" in problems[root / "broken"] and "invalid TOML" in problems[root / "broken"]
    assert "broken" not in registry.ids()
    write_task(make_task("broken"), root, overwrite=True)
    assert "broken" in registry.ids() and [p.name for p, _ in registry.problems()] == ["half"]
    registry.remove("half")
    assert registry.problems() == [] and not (root / "half").exists()


def test_default_registry_installs_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIGYM_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(registry_module, "EXAMPLES_DIR", tmp_path / "no-examples-yet")
    assert len(Registry.default()) == 0
    write_task(make_task("example-one"), tmp_path / "examples")
    monkeypatch.setattr(registry_module, "EXAMPLES_DIR", tmp_path / "examples")
    registry = Registry.default()
    assert registry.path == tmp_path / "home" / "tasks" and registry.ids() == ["example-one"]
    registry.remove("example-one")
    registry.add(make_task("mine"))
    assert Registry.default().ids() == ["mine"]  # examples only fill an empty registry


def _add_many(path: str, prefix: str) -> None:
    registry = Registry(Path(path))
    for number in range(50):
        registry.add(make_task(f"{prefix}-{number:02d}", project=prefix))
        registry.query(project=prefix)  # refreshes race with the other process's writes


def test_two_processes_add_concurrently(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(str(tmp_path), prefix)) for prefix in ("alpha", "beta")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    expected = sorted(f"{prefix}-{n:02d}" for prefix in ("alpha", "beta") for n in range(50))
    with sqlite3.connect(tmp_path / "index.sqlite") as db:  # the index as the writers left it, before any refresh
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert [row[0] for row in db.execute("SELECT id FROM tasks WHERE problem IS NULL ORDER BY id")] == expected
    db.close()
    registry = Registry(tmp_path)
    assert registry.ids() == expected and len(registry) == 100 and registry.problems() == []
    assert len(registry.query(project="beta")) == 50


def test_jsonl_log_survives_a_torn_line_and_publish_never_shows_half(tmp_path: Path) -> None:
    from cligym_env.files import append_jsonl, publish, read_jsonl

    log = tmp_path / "runs" / "log.jsonl"
    append_jsonl(log, [{"a": 1}, {"b": 2}])
    with log.open("ab") as sink:
        sink.write(b'{"torn": ')  # a crash mid-write
    assert read_jsonl(log) == [{"a": 1}, {"b": 2}]
    append_jsonl(log, [{"c": 3}])
    assert read_jsonl(log) == [{"a": 1}, {"b": 2}, {"c": 3}] and log.read_bytes().endswith(b'{"c": 3}\n')
    final, staging = tmp_path / "report.txt", tmp_path / ".report.txt.tmp"
    final.write_text("old")
    staging.write_text("new")
    with pytest.raises(FileExistsError):
        publish(staging, final)
    publish(staging, final, overwrite=True)
    assert final.read_text() == "new" and not staging.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt", "runs"]  # nothing left aside
