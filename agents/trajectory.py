"""The one data type for an episode's record, used by policies, rollouts, evaluation, curation and export.

Policies read the trajectory so far to choose the next reply; rollouts append turns, steps and the grade;
files hold one trajectory per line as JSON (JSONL). Schema, version `SCHEMA_VERSION` (3; version 2 files,
which lack `tamper` and `error`, are read too):

- `task_id`, `episode` (index of this attempt at the task: resumes key on the pair), `instruction`.
- `policy`, `model` (model path or URL; "" for scripted policies), `sampling` (the `SamplingSettings` as a dict).
- `messages`: OpenAI-style chat messages, exactly what the policy saw and said: system prompt, the issue,
  then one assistant reply per turn, each followed by a user message with the command's (head+tail trimmed)
  output or with feedback on a malformed reply. An LLM policy may leave the oldest turns out of a prompt to fit its
  context; `Turn.dropped_messages` says how many.
- `turns`: one `Turn` per reply: the parsed command (None when malformed, with `error`), token counts, and for RL
  the sampled `token_ids` and `logprobs` when the sampling asked for them.
- `steps`: one `Step` per command that ran in the environment: command, full output, exit code, duration (s).
- `reward`, `resolved`, `tests` (test id -> passed / failed / ...), `end` ("submitted", "max_steps" or
  "turn_budget"): the grade, set when the episode is over.
- `tamper`: the grader's audit findings (files changed that could fake the tests); such an episode earns 0 and
  is never kept for training. `error`: why the episode could not be graded ({kind, message, policy_caused}), or
  None; evaluation leaves the episodes whose error the policy did not cause out of pass@k.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

SCHEMA_VERSION = 3
READABLE_VERSIONS = (2, 3)


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
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None


@dataclass
class Trajectory:
    task_id: str
    instruction: str
    policy: str = ""
    episode: int = 0
    model: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
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
        data = json.loads(line)
        if data.get("schema_version") not in READABLE_VERSIONS:
            raise ValueError(f"trajectory schema_version {data.get('schema_version')!r} is not one of "
                             f"{READABLE_VERSIONS}")
        data["schema_version"] = SCHEMA_VERSION
        data["steps"] = [Step(**step) for step in data["steps"]]
        data["turns"] = [Turn(**turn) for turn in data["turns"]]
        return cls(**data)


def read_jsonl(path: Path) -> list[Trajectory]:
    """Every trajectory in `path` (none if it does not exist); a torn last line from a crash is ignored."""
    if not Path(path).exists():
        return []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    return [Trajectory.from_json(line) for line in lines[:-1] if line.strip()]  # text after the last \n is torn


def append_jsonl(path: Path, trajectories: Iterable[Trajectory]) -> None:
    """Append one line per trajectory and flush it to disk, so a crash loses at most the episodes still running."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as sink:
        if sink.tell() and _last_byte(path) != b"\n":  # drop a torn line left by a crash
            sink.truncate(path.read_bytes().rfind(b"\n") + 1)
        for trajectory in trajectories:
            sink.write(trajectory.to_json().encode("utf-8") + b"\n")
        sink.flush()
        os.fsync(sink.fileno())


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as source:
        source.seek(-1, os.SEEK_END)
        return source.read(1)
