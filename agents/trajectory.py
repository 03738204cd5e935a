"""The one data type for an episode's record, used by policies, rollouts, curation and export.

Policies read the trajectory so far to choose the next command; rollouts append steps and the final
grade; files hold one trajectory per line as JSON (schema version in `SCHEMA_VERSION`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass
class Step:
    command: str
    output: str
    exit_code: int | None
    duration: float = 0.0
    timed_out: bool = False
    output_truncated: bool = False


@dataclass
class Trajectory:
    task_id: str
    instruction: str
    policy: str = ""
    steps: list[Step] = field(default_factory=list)
    reward: float | None = None  # None while the episode runs
    resolved: bool = False
    submitted: bool = False
    tests: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def done(self) -> bool:
        return self.reward is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> "Trajectory":
        data = json.loads(line)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"trajectory schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}")
        data["steps"] = [Step(**step) for step in data["steps"]]
        return cls(**data)
