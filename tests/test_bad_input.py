"""A battery of bad input: each gets one clear line on stderr naming what was wrong, exit status 2, no traceback.

The CLI runs through typer's CliRunner (the same `main` the `cligym` script runs); `gym.make` must raise a
`UsageError` whose message names the keyword and value. None of these needs Docker: they fail before it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import cligym_env  # noqa: F401  (registers CLIGym-v0)
from agents.cli import app
from cligym_env.error import UsageError

BAD_CLI = [  # (arguments, words the one line must contain); {registry} and {tmp} are filled in
    (["tasks", "show", "example-bad-permision"], ["example-bad-permision", "did you mean example-bad-permission"]),
    (["tasks", "show", "broken-task"], ["broken-task", "task.toml", "metadata.category", "file-system"]),
    (["tasks", "list", "--bogus"], ["--bogus"]),
    (["images", "build", "no-such-task"], ["no-such-task", "cligym tasks list"]),
    (["rollout", "--policy", "oracel", "--out", "{tmp}/o.jsonl"], ["oracel", "did you mean 'oracle'"]),
    (["rollout", "--policy", "vllm", "--model", "http://x:1", "--out", "{tmp}/o.jsonl"], ["local model folder"]),
    (["rollout", "--policy", "oracle", "--tasks", "no-such-task", "--out", "{tmp}/o.jsonl"], ["no-such-task"]),
    (["rollout", "--policy", "oracle", "--category", "nosuch", "--out", "{tmp}/o.jsonl"], ["nosuch", "file-system"]),
    (["rollout", "--policy", "oracle", "--tasks", "example-bad-permission", "--category", "concurrency", "--out",
      "{tmp}/o.jsonl"], ["no task of category 'concurrency'"]),
    (["rollout", "--policy", "oracle", "--envs", "0", "--out", "{tmp}/o.jsonl"], ["--envs", "1"]),
    (["rollout", "--policy", "oracle", "--episodes", "many", "--out", "{tmp}/o.jsonl"], ["--episodes", "integer"]),
    (["rollout", "--policy", "oracle"], ["--out"]),
    (["eval", "{tmp}/o.jsonl", "--k", "one"], ["--k", "'one'"]),
    (["eval", "{tmp}/o.jsonl", "--k", "0"], ["[0]", ">= 1"]),
    (["eval", "{tmp}/nothing-here.jsonl"], ["nothing-here.jsonl", "cligym rollout"]),
    (["curate", "{tmp}/nothing-here.jsonl", "--out", "{tmp}/kept.jsonl"], ["nothing-here.jsonl"]),
    (["generate", "--mode", "magic"], ["magic", "rules or agentic"]),
    (["generate", "--max-tasks", "-1"], ["--max-tasks"]),
    (["tasks", "list", "--registry", "{tmp}/o.jsonl"], ["o.jsonl", "not a folder"]),
    (["no-such-command"], ["no-such-command"]),
]


@pytest.fixture
def registry_with_a_broken_folder(example_registry) -> Path:
    broken = example_registry.path / "broken-task"
    shutil.copytree(example_registry.path / "example-bad-permission", broken)
    toml = broken / "task.toml"
    toml.write_text(toml.read_text().replace('"example-bad-permission"', '"broken-task"')
                    .replace('category = "file-system"', 'category = "filesystem"'))
    return example_registry.path


@pytest.mark.parametrize("arguments, words", BAD_CLI, ids=[" ".join(a[:3]) for a, _ in BAD_CLI])
def test_cli_says_one_line_and_exits_2(arguments, words, registry_with_a_broken_folder, tmp_path):
    (tmp_path / "o.jsonl").write_text("")
    filled = [a.format(tmp=tmp_path) for a in arguments]
    if arguments[0] in ("tasks", "rollout", "eval", "images", "curate") and "--registry" not in arguments:
        filled += ["--registry", str(registry_with_a_broken_folder)]
    result = CliRunner().invoke(app, filled)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, lines
    for word in words:
        assert word.lower() in errors[0].lower(), errors[0]


def test_the_console_script_itself(example_registry):
    """The same through a real process: stderr holds the one line, and the exit status is 2."""
    run = subprocess.run([sys.executable, "-m", "agents.cli", "tasks", "show", "nope", "--registry",
                          str(example_registry.path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: unknown task id 'nope'"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch, example_registry):
    from cligym_env.tasks.registry import Registry

    monkeypatch.setattr(Registry, "query", lambda self, **kw: 1 / 0)
    result = CliRunner().invoke(app, ["tasks", "list", "--registry", str(example_registry.path)])
    assert isinstance(result.exception, ZeroDivisionError)
    assert "bug in cligym" in result.stderr and "report it" in result.stderr


BAD_MAKE = [
    ({"task_ids": [123]}, ["task_ids=[123]", "strings"]),
    ({"task_ids": "example-bad-permission"}, ["task_ids='example-bad-permission'", "list"]),
    ({"task_ids": []}, ["task_ids=[]", "non-empty"]),
    ({"task_ids": ["example-bad-permision"]}, ["example-bad-permision", "example-bad-permission"]),
    ({"category": "nosuch"}, ["category='nosuch'", "file-system"]),
    ({"project": "nosuch"}, ["project='nosuch'", "cligym tasks list"]),
    ({"max_steps": 0}, ["max_steps=0"]),
    ({"command_timeout": -1}, ["command_timeout=-1"]),
    ({"render_mode": "human"}, ["render_mode='human'", "ansi"]),
    ({"audit": "off"}, ["audit='off'", "enforce"]),
    ({"limits": "2g"}, ["limits='2g'", "Limits("]),
]


@pytest.mark.parametrize("kwargs, words", BAD_MAKE, ids=[next(iter(k)) + "-" + str(i) for i, (k, _) in
                                                         enumerate(BAD_MAKE)])
def test_gym_make_names_the_keyword_and_value(kwargs, words, example_registry):
    with pytest.raises(UsageError) as caught:
        gym.make("CLIGym-v0", registry=example_registry.path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_gym_make_on_a_registry_path_that_is_a_file(tmp_path):
    (tmp_path / "tasks").write_text("")
    with pytest.raises(UsageError, match="is a file"):
        gym.make("CLIGym-v0", registry=tmp_path / "tasks")
