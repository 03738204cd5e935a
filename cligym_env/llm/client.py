"""The one LLM interface shared by the policies and the task generator.

Callers batch many conversations per call because the offline vLLM engine is
only fast when it sees the whole batch at once; the HTTP backend fans the same
batch out over concurrent requests. Both backends return the same records.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from cligym_env.error import LLMError

Message = dict[str, str]
"""OpenAI-style chat message: {"role": "system" | "user" | "assistant", "content": "..."}."""


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False

    def seed_for(self, index: int) -> int | None:
        """Seed of the index-th conversation of a batch.

        Offset per conversation so that a batch of identical prompts (several
        rollouts of one task) still yields distinct samples, while the whole
        batch stays reproducible.
        """
        return None if self.seed is None else self.seed + index


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length", ... as the backend reports it
    token_ids: tuple[int, ...] | None = None
    logprobs: tuple[float, ...] | None = None  # of each sampled token


@dataclass
class Usage:
    """Running totals, so a run can report its token spend whichever backend served it."""

    calls: int = 0
    conversations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, completions: Sequence[Completion]) -> None:
        with self._lock:
            self.calls += 1
            self.conversations += len(completions)
            self.prompt_tokens += sum(c.prompt_tokens for c in completions)
            self.completion_tokens += sum(c.completion_tokens for c in completions)


@runtime_checkable
class LLMClient(Protocol):
    model: str
    usage: Usage

    def chat(
        self, conversations: Sequence[Sequence[Message]], sampling: SamplingSettings
    ) -> list[Completion]:
        """One completion per conversation, in order."""
        ...

    def close(self) -> None:
        """Release the engine or the connection pool; safe to call twice."""
        ...


def make_client(spec: str, **kwargs: Any) -> LLMClient:
    """An OpenAI-compatible endpoint for an http(s) URL, else a local model folder served by vLLM.

    kwargs go to the backend: `OpenAIClient` (model, api_key, timeout_s, ...)
    or `VLLMClient` (max_model_len, dtype, kv_cache_gib, enforce_eager, ...).
    """
    if spec.startswith(("http://", "https://")):
        from cligym_env.llm.openai_api import OpenAIClient

        return OpenAIClient(spec, **kwargs)
    from cligym_env.llm.vllm_engine import VLLMClient

    return VLLMClient(Path(spec).expanduser(), **kwargs)
