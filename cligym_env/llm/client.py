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
import json
from typing import Any, Protocol, runtime_checkable

from cligym_env.error import LLMError

Message = dict[str, Any]
"""OpenAI-style chat message: {"role": "system" | "user" | "assistant" | "tool", "content": "..."}; an assistant
message may carry `tool_calls` and a tool message answers one by its `tool_call_id`."""
Tool = dict[str, Any]
"""OpenAI-style tool: {"type": "function", "function": {"name", "description", "parameters": JSON schema}}."""
ToolCall = dict[str, Any]
"""OpenAI-style call: {"id", "type": "function", "function": {"name", "arguments": a JSON object as a string}}."""


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
    prompt_token_ids: tuple[int, ...] | None = None  # exactly what the model read (offline engine, with logprobs)
    tool_calls: tuple[ToolCall, ...] = ()  # parsed from the reply when tools were offered; `text` is the rest


def template_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as Hugging Face chat templates expect them: tool-call arguments as objects, no null fields.

    The OpenAI API carries arguments as JSON text, while templates (Qwen, Llama, Hermes) render them with `tojson`;
    fields datasets fill with None (a message without `tool_calls`) would otherwise reach the template.
    """
    out = []
    for message in messages:
        message = {key: value for key, value in message.items() if value is not None}
        if message.get("tool_calls"):
            message["tool_calls"] = [_object_arguments(call) for call in message["tool_calls"]]
        out.append(message)
    return out


def _object_arguments(call: ToolCall) -> ToolCall:
    function = dict(call.get("function") or {})
    if isinstance(function.get("arguments"), str):
        try:
            function["arguments"] = json.loads(function["arguments"] or "{}")
        except json.JSONDecodeError:
            pass  # rendered as the text the model wrote
    return {**call, "function": function}


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
        self, conversations: Sequence[Sequence[Message]], sampling: SamplingSettings,
        tools: Sequence[Tool] | None = None,
    ) -> list[Completion]:
        """One completion per conversation, in order; with `tools`, calls come back in `Completion.tool_calls`."""
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
