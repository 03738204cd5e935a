"""The one data type for an episode's record, used by policies, rollouts, evaluation, curation and export.

Policies read the trajectory so far to choose the next reply; rollouts append turns, steps and the grade;
files hold one trajectory per line as JSON (JSONL), each line checked against `JSON_SCHEMA` on reading.
Schema, version `SCHEMA_VERSION` (4; versions 2, which lacks `tamper` and `error`, and 3, which lacks `tools` and
`Turn.prompt_ids`, are read too):

- `task_id`, `episode` (index of this attempt at the task: resumes key on the pair), `instruction`.
- `policy`, `model` (model path or URL; "" for scripted policies), `sampling` (the `SamplingSettings` as a dict).
- `tools`: the OpenAI-style tool schemas offered (`bash(command)`, `submit()`) when the policy acts by tool calls;
  None when it writes fenced ```bash blocks (agents/prompt.py has both formats).
- `messages`: OpenAI-style chat messages, exactly what the policy saw and said: system prompt, the issue,
  then one assistant reply per turn, each followed by a user message with the command's (head+tail trimmed)
  output or with feedback on a malformed reply; with tools, the assistant message keeps its `tool_calls` and each
  call is answered by a `tool` message. An LLM policy may leave the oldest turns out of a prompt to fit its
  context; `Turn.dropped_messages` says how many.
- `turns`: one `Turn` per reply: the parsed command (None when malformed, with `error`), token counts, and for RL
  (when the sampling asked for logprobs) token-exact records: `prompt_ids`, the very tokens the model read (after
  any context fitting), the sampled `token_ids` and their `logprobs`, so a trainer never re-tokenises the history.
- `steps`: one `Step` per command that ran in the environment: command, full output, exit code, duration (s).
- `reward`, `resolved`, `tests` (test id -> passed / failed / ...), `end` ("submitted", "max_steps" or
  "turn_budget"): the grade, set when the episode is over.
- `tamper`: the grader's audit findings (files changed that could fake the tests); such an episode earns 0 and
  is never kept for training. `error`: why the episode could not be graded ({kind, message, policy_caused}), or
  None; evaluation leaves the episodes whose error the policy did not cause out of pass@k.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import jsonschema

from cligym_env import files
from cligym_env.error import TrajectoryError

SCHEMA_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)

_IDS = {"type": ["array", "null"]}  # items unchecked: token-exact turns hold many thousand ids each
_TURN = {"type": "object", "additionalProperties": False, "required": ["command"], "properties": {
    "command": {"type": ["string", "null"]}, "error": {"type": "string"}, "prompt_tokens": {"type": "integer"},
    "completion_tokens": {"type": "integer"}, "finish_reason": {"type": "string"},
    "dropped_messages": {"type": "integer"}, "prompt_ids": _IDS, "token_ids": _IDS, "logprobs": _IDS}}
_STEP = {"type": "object", "additionalProperties": False, "required": ["command", "output", "exit_code"],
         "properties": {"command": {"type": "string"}, "output": {"type": "string"},
                        "exit_code": {"type": ["integer", "null"]}, "duration": {"type": "number"},
                        "timed_out": {"type": "boolean"}, "output_truncated": {"type": "boolean"}}}
_MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": {"enum": ["system", "user", "assistant", "tool"]}, "content": {"type": ["string", "null"]},
    "tool_calls": {"type": ["array", "null"], "items": {"type": "object", "required": ["function"]}},
    "tool_call_id": {"type": ["string", "null"]}}}
JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "cligym trajectory",
    "type": "object",
    "additionalProperties": False,
    "required": ["task_id", "instruction", "schema_version", "messages", "turns", "steps"],
    "properties": {
        "schema_version": {"enum": list(READABLE_VERSIONS)},
        "task_id": {"type": "string"}, "instruction": {"type": "string"}, "policy": {"type": "string"},
        "episode": {"type": "integer", "minimum": 0}, "model": {"type": "string"}, "sampling": {"type": "object"},
        "tools": {"type": ["array", "null"], "items": {"type": "object"}},
        "messages": {"type": "array", "items": _MESSAGE}, "turns": {"type": "array", "items": _TURN},
        "steps": {"type": "array", "items": _STEP}, "reward": {"type": ["number", "null"]},
        "resolved": {"type": "boolean"}, "tests": {"type": "object", "additionalProperties": {"type": "string"}},
        "end": {"type": "string"}, "tamper": {"type": "array", "items": {"type": "string"}},
        "error": {"type": ["object", "null"]}, "extra": {"type": "object"},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(JSON_SCHEMA)


@dataclass
class Step:
    command: str
    output: str
    exit_code: int | None
    duration: float = 0.0
    timed_out: bool = False
    output_truncated: bool = False


@dataclass
class Turn:
    """One reply of the policy: what it asked for and what producing it cost."""

    command: str | None  # a shell command, `submit`, or None when the reply held no usable command
    error: str = ""  # why `command` is None; told back to the model
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    dropped_messages: int = 0  # oldest messages left out of the prompt to fit the context
    token_ids: list[int] | None = None  # sampled, when logprobs were asked for
    logprobs: list[float] | None = None
    prompt_ids: list[int] | None = None  # the templated prompt exactly as the engine read it (vLLM, with logprobs)


@dataclass
class Trajectory:
    task_id: str
    instruction: str
    policy: str = ""
    episode: int = 0
    model: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    reward: float | None = None  # None while the episode runs
    resolved: bool = False
    tests: dict[str, str] = field(default_factory=dict)
    end: str = ""
    tamper: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def done(self) -> bool:
        return self.reward is not None

    @property
    def infrastructure_failure(self) -> bool:
        """The episode ended on a failure the policy did not cause (Docker, the host): it says nothing of the policy."""
        return bool(self.error) and not self.error.get("policy_caused", True)

    @property
    def commands(self) -> list[str]:
        return [step.command for step in self.steps]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Trajectory:
        """Parse one JSONL line; a line off the schema raises `TrajectoryError` naming the field and value."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrajectoryError(f"not JSON ({exc})") from exc
        error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(data))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
            raise TrajectoryError(f"field {where}: {error.message} (a trajectory of schema version "
                                  f"{READABLE_VERSIONS[0]}-{SCHEMA_VERSION}, as `cligym rollout` writes, is expected)")
        data["schema_version"] = SCHEMA_VERSION
        data["steps"] = [Step(**step) for step in data["steps"]]
        data["turns"] = [Turn(**turn) for turn in data["turns"]]
        return cls(**data)


def read_jsonl(path: Path) -> list[Trajectory]:
    """Every trajectory in `path` (none if it does not exist); a torn last line from a crash is ignored."""
    if not Path(path).exists():
        return []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    trajectories = []
    for number, line in enumerate(lines[:-1], 1):  # text after the last \n is torn
        if line.strip():
            try:
                trajectories.append(Trajectory.from_json(line))
            except TrajectoryError as exc:
                raise TrajectoryError(f"{path}:{number}: {exc}") from None
    return trajectories


def append_jsonl(path: Path, trajectories: Iterable[Trajectory]) -> None:
    """Append one line per trajectory and flush it to disk, so a crash loses at most the episodes still running."""
    files.append_jsonl(path, trajectories, encode=Trajectory.to_json)
