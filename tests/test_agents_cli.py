"""The agent commands of `cligym`, end to end: rollout -> eval -> curate -> export-sft on real environments."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agents.cli import app
from agents.trajectory import read_jsonl

TASKS = "example-bad-permission,example-corrupted-config"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_rollout_eval_curate_export(example_registry, docker_client, tmp_path: Path):
    registry = ["--registry", example_registry.path]
    oracle = tmp_path / "oracle.jsonl"
    invoke("rollout", "--policy", "oracle", "--tasks", TASKS, "--episodes", 2, "--envs", 2, "--out", oracle,
           *registry)
    assert sorted((t.task_id, t.episode, t.reward) for t in read_jsonl(oracle)) == [
        (task_id, index, 1.0) for task_id in TASKS.split(",") for index in (0, 1)]

    report = json.loads(invoke("eval", oracle, "--k", "1,2", "--json", *registry))
    assert report["overall"]["1"][0] == report["overall"]["2"][0] == 1.0
    assert [(s["task_id"], s["n"], s["resolved"]) for s in report["tasks"]] == [
        (task_id, 2, 2) for task_id in TASKS.split(",")]
    split = json.loads(invoke("eval", oracle, "--json", "--tasks", "example-bad-permission,example-missing-module",
                              *registry))
    assert [s["task_id"] for s in split["tasks"]] == ["example-bad-permission"]
    assert split["missing"] == ["example-missing-module"]

    noop = tmp_path / "noop.jsonl"  # eval by running: the file is written first, then scored
    ran = json.loads(invoke("eval", noop, "--policy", "noop", "--tasks", TASKS, "--k", "1,2", "--envs", 2,
                            "--json", *registry))
    assert ran["overall"]["1"][0] == ran["overall"]["2"][0] == 0.0 and len(read_jsonl(noop)) == 4

    kept = tmp_path / "kept.jsonl"
    invoke("curate", oracle, "--out", kept, *registry)
    assert sorted(t.task_id for t in read_jsonl(kept)) == TASKS.split(",")  # second episodes are duplicates

    from datasets import load_from_disk

    invoke("export-sft", kept, "--out", tmp_path / "sft")
    dataset = load_from_disk(str(tmp_path / "sft"))
    assert len(dataset) == 2 and dataset[0]["messages"][-1] == {"role": "assistant", "content": "submit"}


def test_bad_arguments_fail_clearly(example_registry, tmp_path: Path):
    result = CliRunner().invoke(app, ["rollout", "--policy", "vllm", "--model", "http://x:1", "--tasks",
                                           "example-bad-permission", "--out", str(tmp_path / "o.jsonl"),
                                           "--registry", str(example_registry.path)])
    assert result.exit_code == 2 and "needs --model with a local model folder" in result.stderr
    result = CliRunner().invoke(app, ["rollout", "--policy", "oracle", "--tasks", "no-such-task", "--out",
                                           str(tmp_path / "o.jsonl"), "--registry", str(example_registry.path)])
    assert result.exit_code == 2 and "no-such-task" in result.stderr
