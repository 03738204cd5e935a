"""Trajectory files are checked against the JSON schema (jsonschema): old versions read, bad lines named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.trajectory import JSON_SCHEMA, SCHEMA_VERSION, Step, Trajectory, Turn, append_jsonl, read_jsonl
from cligym_env.error import TrajectoryError, UsageError


def tool_trajectory() -> Trajectory:
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}
    return Trajectory("t", "issue", policy="vllm", tools=[{"type": "function", "function": {"name": "bash"}}],
                      messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "issue"},
                                {"role": "assistant", "content": "", "tool_calls": [call]},
                                {"role": "tool", "tool_call_id": "c1", "content": "exit code 0\n"}],
                      turns=[Turn("ls", prompt_tokens=3, completion_tokens=2, prompt_ids=[1, 2, 3], token_ids=[7, 8],
                                  logprobs=[-0.5, -1.0])],
                      steps=[Step("ls", "", 0, 0.1)], reward=0.0, end="turn_budget")


def test_a_version_4_trajectory_round_trips_and_version_3_is_read(tmp_path: Path):
    trajectory = tool_trajectory()
    assert trajectory.schema_version == SCHEMA_VERSION == 4 and JSON_SCHEMA["properties"]["schema_version"]
    append_jsonl(tmp_path / "t.jsonl", [trajectory])
    [read] = read_jsonl(tmp_path / "t.jsonl")
    assert read == trajectory and read.turns[0].prompt_ids == [1, 2, 3]
    old = json.loads(trajectory.to_json())
    del old["tools"], old["turns"][0]["prompt_ids"]
    old["schema_version"] = 3
    read = Trajectory.from_json(json.dumps(old))
    assert read.tools is None and read.turns[0].prompt_ids is None and read.schema_version == 4


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(schema_version=1), "schema_version: 1 is not one of"),
    (lambda d: d["turns"][0].update(tokens=3), "turns/0: Additional properties are not allowed"),
    (lambda d: d["steps"][0].update(exit_code="0"), "steps/0/exit_code: '0' is not of type"),
    (lambda d: d["messages"][1].update(role="robot"), "messages/1/role: 'robot' is not one of"),
    (lambda d: d.pop("task_id"), "(top level): 'task_id' is a required property"),
])
def test_a_bad_line_is_named_with_its_file_line_and_field(tmp_path: Path, change, field):
    good = tool_trajectory().to_json()
    bad = json.loads(good)
    change(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n{json.dumps(bad)}\n")
    with pytest.raises(TrajectoryError, match=f"bad.jsonl:2: field {field}".replace("(", r"\(").replace(")", r"\)")):
        read_jsonl(path)
    path.write_text("{not json\n")
    with pytest.raises(UsageError, match="bad.jsonl:1: not JSON"):
        read_jsonl(path)
