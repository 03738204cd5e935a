"""An LLM behind any `LLMClient` (offline vLLM engine or OpenAI-compatible endpoint) as a batched policy.

Each `act` makes exactly ONE `client.chat` call for all the episodes it is given (`calls` counts them), because the
offline engine is only fast when it sees the whole batch. Prompts are the trajectories' messages (agents/prompt.py),
fitted to the context: no prompt is longer than `max_model_len - sampling.max_tokens` tokens.
With `actions="tools"` the client gets `tools=` (agents/prompt.py's `TOOLS`) and the reply's tool calls are parsed
(by vLLM's tool parser offline, by the server over HTTP); the turns keep the prompt ids (vLLM, with logprobs).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Callable, Sequence

from agents import prompt
from agents.policy import Reply
from agents.trajectory import Trajectory, Turn
from cligym_env.llm import LLMClient, Message, SamplingSettings, Tool, template_messages
from cligym_env.spaces import trim

Counter = Callable[[Sequence[Message]], int]
DROPPED_NOTE = "\n\n[Earlier turns were left out to fit the model's context.]"


def token_counter(client: LLMClient, tokenizer: str | None = None, tools: Sequence[Tool] | None = None) -> Counter:
    """Exact prompt length from the engine's own tokenizer or a local one; else a cautious estimate.

    The estimate (2 characters per token, plus 8 tokens per message for the template, plus the tools' JSON)
    over-counts for real models' tokenizers, so prompts fit at the price of some unused context.
    """
    if hasattr(client, "prompt_ids"):
        return lambda messages: len(client.prompt_ids(messages, tools) if tools else client.prompt_ids(messages))
    if tokenizer:
        from transformers import AutoTokenizer

        loaded = AutoTokenizer.from_pretrained(tokenizer)
        return lambda messages: len(loaded.apply_chat_template(
            template_messages(messages), tools=list(tools) if tools else None, tokenize=True,
            add_generation_prompt=True, return_dict=False))
    extra = len(json.dumps(list(tools))) // 2 if tools else 0
    return lambda messages: extra + sum(len(json.dumps(m)) // 2 + 8 for m in messages)


class LLMPolicy:
    """A model choosing commands; `name` is the backend ("vllm" or "openai") for the trajectory records."""

    def __init__(self, client: LLMClient, sampling: SamplingSettings, *, name: str = "llm",
                 max_model_len: int | None = None, count: Counter | None = None, actions: str = "fenced") -> None:
        self.client, self.sampling, self.name = client, sampling, name
        self.model = client.model
        self.actions = prompt.check_actions(actions)  # Episode.start reads it for the first messages and tools
        self.tools = prompt.tools_for(actions)
        max_model_len = max_model_len or getattr(client, "max_model_len", None)
        self.max_prompt_tokens = None if max_model_len is None else max_model_len - sampling.max_tokens
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 64:
            raise ValueError(f"max_model_len {max_model_len} leaves no room for prompts next to "
                             f"max_tokens {sampling.max_tokens}")
        self.count = count or token_counter(client, tools=self.tools)
        self.calls = 0  # client.chat calls made: one per act
        self._seed_offset = 0

    def act(self, trajectories: Sequence[Trajectory]) -> list[Reply]:
        fitted = [self.fit(trajectory.messages) for trajectory in trajectories]
        tools = {"tools": self.tools} if self.tools else {}
        completions = self.client.chat([messages for messages, _ in fitted], self._next_sampling(len(fitted)),
                                       **tools)
        self.calls += 1
        replies = []
        for completion, (_, dropped) in zip(completions, fitted):
            if self.tools:
                command, error = prompt.parse_tool_calls(completion.tool_calls, completion.finish_reason)
            else:
                command, error = prompt.parse_reply(completion.text, completion.finish_reason)
            turn = Turn(command, error, completion.prompt_tokens, completion.completion_tokens,
                        completion.finish_reason, dropped, _list(completion.token_ids), _list(completion.logprobs),
                        _list(completion.prompt_token_ids))
            replies.append(Reply(completion.text, turn, tuple(completion.tool_calls) if self.tools else ()))
        return replies

    def _next_sampling(self, batch: int) -> SamplingSettings:
        """Seeds run on across calls, so no two conversations of a run (e.g. two episodes of a task) share one."""
        if self.sampling.seed is None:
            return self.sampling
        sampling = replace(self.sampling, seed=self.sampling.seed + self._seed_offset)
        self._seed_offset += batch
        return sampling

    def fit(self, messages: Sequence[Message]) -> tuple[list[Message], int]:
        """The messages that fit the context, and how many were dropped.

        The system prompt and the issue always stay; the oldest turns (a reply and the messages answering it) go
        first, and only when one turn is left are message texts trimmed (head+tail), the longest first.
        """
        fitted = [dict(m) for m in messages]
        if self.max_prompt_tokens is None:
            return fitted, 0
        dropped = 0
        while self.count(fitted) > self.max_prompt_tokens:
            end = next((i for i in range(3, len(fitted)) if fitted[i]["role"] == "assistant"), len(fitted))
            if end < len(fitted):  # more than one turn left: drop the oldest whole
                del fitted[2:end]
                dropped += end - 2
                fitted[1]["content"] = messages[1]["content"] + DROPPED_NOTE
                continue
            longest = max(fitted, key=lambda m: len(m.get("content") or ""))
            if len(longest["content"]) < 200:
                raise ValueError(f"even a trimmed prompt exceeds {self.max_prompt_tokens} tokens: raise max_model_len")
            longest["content"] = trim(longest["content"], len(longest["content"]) // 2)
        return fitted, dropped

    def close(self) -> None:
        self.client.close()


def _list(values: Sequence | None) -> list | None:
    return list(values) if values is not None else None
