"""SFT export: assistant-only labels under the tiny model's chat template, and scripts/train_sft.py on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agents.prompt import first_messages
from agents.sft import IGNORE, encode, export
from agents.trajectory import Trajectory
from cligym_env.llm import build_tiny_model

for extra in ("datasets", "transformers", "trl", "peft"):  # the `train` extra
    pytest.importorskip(extra)
ROOT = Path(__file__).resolve().parents[1]
REPLIES = ["```bash\nls -la /app/bin\n```", "```bash\nchmod +x /app/bin/inventory-report\n```", "submit"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("sft") / "tiny-llama")


def solved(task_id: str) -> Trajectory:
    messages = first_messages(f"{task_id}: inventory-report says permission denied.")
    for reply, output in zip(REPLIES, ["exit code 0\n-rw-r--r-- inventory-report", "exit code 0\n(no output)"]):
        messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": output}]
    messages.append({"role": "assistant", "content": REPLIES[-1]})
    return Trajectory(task_id, messages[1]["content"], policy="oracle", messages=messages, reward=1.0,
                      resolved=True, end="submitted")


def test_labels_cover_exactly_the_assistant_replies(tiny_model: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    messages = solved("a").messages
    row = encode(messages, tokenizer)
    assert tokenizer.decode(row["input_ids"]) == tokenizer.apply_chat_template(messages, tokenize=False)
    trained = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE])
    assert trained == "".join(f"{reply}<|end|>\n" for reply in REPLIES)  # no role header, issue or output
    assert all(label in (IGNORE, token) for token, label in zip(row["input_ids"], row["labels"]))
    assert len(encode(messages, tokenizer, max_length=50)["labels"]) == 50

    class Rewriting:  # a template that re-renders earlier turns cannot be split by prefix
        def apply_chat_template(self, messages, **kwargs):
            return f"{len(messages)} messages: " + "|".join(m["content"] for m in messages)

    with pytest.raises(ValueError, match="plain chat template"):
        encode(messages, Rewriting())


@pytest.mark.timeout(600)
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_train_sft_runs_steps_on_cpu(tiny_model: Path, tmp_path: Path, lora: bool):
    from datasets import load_from_disk

    dataset = tmp_path / "sft"
    export([solved("a"), solved("b"), solved("c")], dataset, tokenizer=str(tiny_model))
    saved = load_from_disk(str(dataset))
    assert {"messages", "input_ids", "attention_mask", "labels"} <= set(saved.column_names) and len(saved) == 3
    run = tmp_path / "run"
    command = [sys.executable, str(ROOT / "scripts" / "train_sft.py"), "--dataset", str(dataset), "--model",
               str(tiny_model), "--out", str(run), "--max-steps", "2", "--lr", "1e-3", "--batch-size", "2"]
    done = subprocess.run(command + (["--lora", "--lora-rank", "4"] if lora else []), capture_output=True,
                          text=True, timeout=540, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((run / "train_result.json").read_text())
    assert result["steps"] == 2 and len(result["losses"]) == 2 and result["examples"] == 3
    assert all(0 < loss < 20 for loss in result["losses"])
    assert (run / ("adapter_config.json" if lora else "model.safetensors")).is_file()
    assert (run / "tokenizer.json").is_file()
