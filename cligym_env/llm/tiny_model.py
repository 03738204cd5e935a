"""A tiny random-weight Llama with a real tokenizer and chat template.

No model hub is reachable here, yet the LLM layer, the policies and the demo
must run a real engine end to end: this builds a ~2 MB model locally that
exercises the same code paths as a real checkpoint (it only talks nonsense).
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
from pathlib import Path

# Plain Jinja understood by both transformers and vLLM's chat renderer. Without tools a conversation renders as
# `<|role|>\ncontent<|end|>\n` per message; with tools they are listed first and calls are written Hermes-style
# (`<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, as Qwen does), so vLLM's "hermes" parser and
# TRL's tool loop read them. Every message renders on its own, so any prefix of a conversation renders as a prefix.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}<|system|>\n# Tools\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}"
    "Call one with <tool_call>\n{\"name\": <name>, \"arguments\": <object>}\n</tool_call><|end|>\n{% endif %}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% for call in message.tool_calls or [] %}{% set call = call.function if call.function is defined else call %}"
    "<tool_call>\n{\"name\": \"{{ call.name }}\", \"arguments\": "
    "{% if call.arguments is string %}{{ call.arguments }}{% else %}{{ call.arguments | tojson }}{% endif %}"
    "}\n</tool_call>{% endfor %}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
TOOL_TOKENS = ["<tool_call>", "</tool_call>"]  # plain added tokens, as in Qwen's vocabulary
# How transformers' `parse_response` (and so TRL's tool loop) reads a reply of this template.
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|assistant|>\n",
    "fields": {
        "tool_calls": {"open": "<tool_call>", "close_pattern": r"</tool_call>\s*", "repeats": True,
                       "content": "json", "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"<\|end\|>\s*", "content": "text"},
    },
}

_COMMANDS = ["ls -la", "cat", "grep -rn", "apt-get install -y", "pip install", "chmod +x", "git status"]
_PATHS = ["/etc/hosts", "/usr/bin/python3", "~/.bashrc", "/var/log/syslog", "setup.py", "Makefile"]
_PROSE = [
    "The command failed with exit code 1.",
    "Permission denied while opening the file.",
    "Fix the broken environment so the tests pass.",
    "No such file or directory.",
]


def _corpus(seed: int) -> list[str]:
    """A few hundred shell-flavoured lines: enough for BPE merges that look like CLI text."""
    lines = [f"$ {cmd} {path}" for cmd, path in itertools.product(_COMMANDS, _PATHS)]
    rng = random.Random(seed)
    lines += [" ".join(rng.choices(_PROSE + lines, k=3)) for _ in range(300)]
    return lines


def _build_tokenizer(seed: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(_corpus(seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|bos|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        chat_template=CHAT_TEMPLATE,
        response_template=RESPONSE_TEMPLATE,
        model_max_length=2048,
    )
    tokenizer.add_tokens(TOOL_TOKENS)
    return tokenizer


def build_tiny_model(folder: Path, *, seed: int = 0) -> Path:
    """Build and save the model + tokenizer into `folder`; reuse it if already there.

    Built in a sibling temp folder and renamed in place, so a crash or a
    concurrent builder never leaves a half-written model behind.
    """
    folder = Path(folder)
    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file() and _current(folder):
        return folder

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _build_tokenizer(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 64: vLLM's CPU attention rejects 16
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)

    staging = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if folder.exists() and not _current(folder):  # built by an older version: no tool support
        shutil.rmtree(folder, ignore_errors=True)
    try:
        staging.rename(folder)
    except OSError:  # another builder won the race (or folder exists but is incomplete)
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / "config.json").is_file():
            raise
    return folder


def _current(folder: Path) -> bool:
    """Whether the saved tokenizer has this version's chat template (older builds lack tools)."""
    config = folder / "tokenizer_config.json"
    return config.is_file() and CHAT_TEMPLATE in config.read_text() or (
        (folder / "chat_template.jinja").is_file() and (folder / "chat_template.jinja").read_text() == CHAT_TEMPLATE)
