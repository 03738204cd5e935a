"""Trajectories as a supervised fine-tuning set: `messages` and `tools` columns, optionally tokenized for TRL.

Tokenized rows carry `input_ids`, `attention_mask` and `labels`, with labels -100 on every token the model did not
write (system, issue, command outputs, tool results, feedback, and the template's role headers), so the loss covers
only the assistant's replies, tool calls included. Tool-call trajectories are rendered with the tokenizer's chat
template and `tools=` (the schemas the policy was offered), so the model learns calls in its own format.
TRL's `SFTTrainer` uses such `labels` as they are. `tools` is stored as JSON text (or "" for fenced replies):
Arrow would otherwise merge the tools' differing parameter schemas into one struct.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from agents.trajectory import Trajectory
from cligym_env.llm import template_messages

IGNORE = -100


def to_dataset(trajectories: Iterable[Trajectory]):
    from datasets import Dataset

    return Dataset.from_list([{"messages": t.messages, "tools": json.dumps(t.tools) if t.tools else "",
                               "task_id": t.task_id, "episode": t.episode, "reward": t.reward} for t in trajectories])


def encode(messages: Sequence[dict[str, Any]], tokenizer: Any, max_length: int | None = None,
           tools: Sequence[dict[str, Any]] | None = None) -> dict[str, list[int]]:
    """Token ids of the templated conversation and labels that train only the assistant's text.

    The conversation is rendered one message at a time; each new piece of text is tokenized on its own and masked
    unless it is an assistant reply (without its role header). This needs a template where a conversation's
    rendering starts with the rendering of any prefix of it, which holds for plain chat templates.
    """
    messages = template_messages(messages)
    pieces: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            header = _render(tokenizer, messages[:i], generation_prompt=True, tools=tools)
            pieces.append((_suffix(done, header), False))
            done = header
        text = _render(tokenizer, messages[:i + 1], generation_prompt=False, tools=tools)
        pieces.append((_suffix(done, text), message["role"] == "assistant"))
        done = text
    input_ids: list[int] = []
    labels: list[int] = []
    for text, trained in pieces:
        ids = tokenizer.encode(text, add_special_tokens=False)
        input_ids += ids
        labels += ids if trained else [IGNORE] * len(ids)
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def _render(tokenizer: Any, messages: Sequence[dict[str, Any]], generation_prompt: bool,
            tools: Sequence[dict[str, Any]] | None = None) -> str:
    if not messages:
        return ""
    extra = {"tools": list(tools)} if tools else {}  # only when there are tools: some templates take no `tools`
    return tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                         add_generation_prompt=generation_prompt, **extra)


def _suffix(prefix: str, text: str) -> str:
    if not text.startswith(prefix):
        raise ValueError("the chat template renders a conversation differently from its prefix (it rewrites "
                         "earlier turns), so assistant tokens cannot be located; use a plain chat template")
    return text[len(prefix):]


def tokenize(dataset, tokenizer: Any, max_length: int | None = None):
    """`dataset` with `input_ids`, `attention_mask` and `labels` added."""
    return dataset.map(lambda row: encode(row["messages"], tokenizer, max_length,
                                          json.loads(row["tools"]) if row.get("tools") else None), desc="tokenizing")


def export(trajectories: Iterable[Trajectory], out: Path, *, tokenizer: str | None = None,
           max_length: int | None = None):
    """Save the SFT set to `out` (`datasets.save_to_disk`), tokenized when a tokenizer folder or name is given."""
    dataset = to_dataset(trajectories)
    if tokenizer:
        from transformers import AutoTokenizer

        dataset = tokenize(dataset, AutoTokenizer.from_pretrained(tokenizer), max_length)
    dataset.save_to_disk(str(out))
    return dataset
