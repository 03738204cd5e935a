"""Tool-call actions (`bash(command)`, `submit()`): vLLM's parser on realistic replies, a real vLLM rollout on the
tiny model with token-exact turns, a scripted tool-calling episode in a real container, and their SFT export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pytest

from agents import prompt
from agents.llm_policy import LLMPolicy
from agents.policy import Reply
from agents.rollout import RolloutConfig, rollout
from agents.sft import IGNORE, export
from agents.trajectory import Trajectory, Turn, read_jsonl
from cligym_env.error import LLMError
from cligym_env.llm import SamplingSettings, template_messages
from tests.conftest import own_containers

try:
    import vllm  # noqa: F401

    VLLM_MISSING = ""
except Exception as exc:  # a broken install counts as missing
    VLLM_MISSING = f"vllm is not importable ({exc}); pip install 'cligym-env[vllm]'"
needs_vllm = pytest.mark.skipif(bool(VLLM_MISSING), reason=VLLM_MISSING)
TASK = "example-bad-permission"
CALL = '<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'


def call(name: str, **arguments) -> dict:
    return {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def test_tool_calls_are_parsed_strictly():
    assert prompt.parse_tool_calls([call("bash", command=" ls -la /app \n")]) == ("ls -la /app", "")
    assert prompt.parse_tool_calls([call("submit")]) == ("submit", "")
    assert prompt.parse_tool_calls([], "length") == (None, "your reply called no tool (it was cut off at the "
                                                            "token limit: keep replies short)")
    assert prompt.parse_tool_calls([call("bash", command="a"), call("submit")])[1] == (
        "your reply made 2 tool calls; make exactly one")
    assert "no tool 'python'" in prompt.parse_tool_calls([call("python", code="1")])[1]
    assert "non-empty string argument" in prompt.parse_tool_calls([call("bash", cmd="ls")])[1]
    broken = {"function": {"name": "bash", "arguments": '{"command": "ls"'}}
    assert "not a JSON object" in prompt.parse_tool_calls([broken])[1]
    assert prompt.answer({"role": "assistant", "content": "x"}, "out") == [{"role": "user", "content": "out"}]
    assert prompt.answer({"role": "assistant", "tool_calls": [call("bash", command="ls"), call("submit")]}, "o") == [
        {"role": "tool", "tool_call_id": "call_bash", "content": "o"},
        {"role": "tool", "tool_call_id": "call_submit", "content": "o"}]


@needs_vllm
def test_vllm_hermes_parser_reads_qwen_style_replies(tiny_model: Path):
    from transformers import AutoTokenizer

    from cligym_env.llm.vllm_engine import vllm_tool_parser

    parse = vllm_tool_parser("hermes", AutoTokenizer.from_pretrained(tiny_model), prompt.TOOLS)
    heredoc = "cat > /app/conf.ini <<'EOF'\n[main]\nkey = \"v\"\nEOF"
    replies = {  # as Qwen2.5 / Qwen3 chat templates make their models write them
        "The script lacks its execute bit.\n" + CALL.format(name="bash", arguments=json.dumps(
            {"command": "chmod +x /app/bin/inventory-report"})): "chmod +x /app/bin/inventory-report",
        "<think>\nThe config is truncated; rewrite it.\n</think>\n\n" + CALL.format(
            name="bash", arguments=json.dumps({"command": heredoc})): heredoc,
        CALL.format(name="submit", arguments="{}"): "submit",
    }
    for text, command in replies.items():
        content, calls = parse(text)
        assert len(calls) == 1 and calls[0]["id"] and calls[0]["type"] == "function"
        assert prompt.parse_tool_calls(calls) == (command, "") and "<tool_call>" not in content
    content, calls = parse("I will look first.")
    assert (content, calls) == ("I will look first.", ())
    two = CALL.format(name="bash", arguments='{"command": "ls"}') + "\n" + CALL.format(name="submit", arguments="{}")
    assert prompt.parse_tool_calls(parse(two)[1])[1] == "your reply made 2 tool calls; make exactly one"
    bad = '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"\n</tool_call>'  # unbalanced JSON
    assert parse(bad) == (bad, ()) and prompt.parse_tool_calls(parse(bad)[1])[0] is None
    with pytest.raises(LLMError, match="no tool parser 'nosuch'.*hermes"):
        vllm_tool_parser("nosuch", None, prompt.TOOLS)


class ToolOracle:
    """Calls bash with the task's repair, then submit(): a tool-calling policy with known-good calls."""

    name, actions, model = "tool-oracle", "tools", ""

    def __init__(self, solution: str) -> None:
        self.solution = solution

    def act(self, trajectories: Sequence[Trajectory]) -> list[Reply]:
        replies = []
        for trajectory in trajectories:
            made = call("submit") if trajectory.steps else call("bash", command=self.solution)
            command, error = prompt.parse_tool_calls([made])
            replies.append(Reply("Fixing it." if not trajectory.steps else "", Turn(command, error), (made,)))
        return replies


@needs_vllm
@pytest.mark.vllm
@pytest.mark.timeout(600)
def test_tool_call_rollouts_write_token_exact_trajectories_that_export_to_sft(
        vllm_engine, tiny_model: Path, example_registry, docker_client, tmp_path: Path):
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    policy = LLMPolicy(vllm_engine, SamplingSettings(temperature=1.0, max_tokens=24, seed=5, logprobs=True),
                       name="vllm", actions="tools")
    stats = rollout(policy, [TASK], tmp_path / "vllm.jsonl", RolloutConfig(envs=1, max_turns=2, progress=False),
                    registry=example_registry)
    oracle = ToolOracle(example_registry.get(TASK).solution.strip())
    rollout(oracle, [TASK], tmp_path / "oracle.jsonl", RolloutConfig(envs=1, progress=False), registry=example_registry)
    assert not own_containers(docker_client)

    [garbage] = read_jsonl(tmp_path / "vllm.jsonl")
    assert stats.episodes == 1 and garbage.tools == prompt.TOOLS and garbage.schema_version == 4
    assert garbage.messages[0]["content"] == prompt.SYSTEM_TOOLS and garbage.end == "turn_budget"
    starts = [i for i, m in enumerate(garbage.messages) if m["role"] == "assistant"]
    for turn, start in zip(garbage.turns, starts):  # token-exact: the very ids the engine read and wrote
        assert turn.prompt_ids == vllm_engine.prompt_ids(garbage.messages[:start], prompt.TOOLS)
        assert turn.prompt_tokens == len(turn.prompt_ids) and turn.dropped_messages == 0
        assert len(turn.token_ids) == len(turn.logprobs) == turn.completion_tokens > 0
        assert turn.command is None and turn.error.startswith("your reply called no tool")  # garbage, no call
    assert garbage.messages[3] == {"role": "user", "content": prompt.feedback(garbage.turns[0].error, 1, prompt.TOOLS)}

    [solved] = read_jsonl(tmp_path / "oracle.jsonl")
    assert (solved.reward, solved.resolved, solved.end) == (1.0, True, "submitted")
    assert [m["role"] for m in solved.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert solved.messages[2]["tool_calls"][0]["function"]["name"] == "bash"  # the calls are kept
    assert solved.messages[3]["tool_call_id"] == "call_bash" and solved.messages[3]["content"].startswith("exit code 0")

    dataset = export([solved, garbage], tmp_path / "sft", tokenizer=str(tiny_model))
    assert load_from_disk(str(tmp_path / "sft"))["tools"][0] == json.dumps(prompt.TOOLS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    row = dataset[0]
    rendered = tokenizer.apply_chat_template(template_messages(row["messages"]), tools=prompt.TOOLS, tokenize=False)
    assert tokenizer.decode(row["input_ids"]) == rendered  # the whole conversation, through the template
    trained = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE])
    assert trained == ("Fixing it." + CALL.format(name="bash", arguments=json.dumps({"command": oracle.solution}))
                       + "<|end|>\n" + CALL.format(name="submit", arguments="{}") + "<|end|>\n")
    assert json.dumps(prompt.TOOLS[0]) in tokenizer.decode(row["input_ids"])  # rendered with the tools
