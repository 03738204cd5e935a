"""LLM policies end to end on the tiny random model: the offline vLLM engine and a real `vllm serve`.

The tiny model only talks nonsense, which is the point here: every reply is malformed, so these tests prove the
feedback path, the turn budget and clean endings under garbage, plus batching, context fitting and RL fields.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agents.llm_policy import LLMPolicy
from agents.policies import PolicySpec, make_policy
from agents.rollout import RolloutConfig, rollout
from agents.trajectory import read_jsonl
from cligym_env.llm import SamplingSettings, make_client
from tests.conftest import own_containers, serve_vllm

try:
    import vllm  # noqa: F401

    VLLM_MISSING = ""
except Exception as exc:  # a broken install counts as missing
    VLLM_MISSING = f"vllm is not importable ({exc}); pip install 'cligym-env[vllm]'"

pytestmark = [pytest.mark.vllm, pytest.mark.skipif(bool(VLLM_MISSING), reason=VLLM_MISSING),
              pytest.mark.timeout(600)]
EXAMPLE_IDS = ["example-bad-permission", "example-corrupted-config", "example-missing-module"]
MAX_MODEL_LEN = 1280  # the issue texts take 650-1080 tiny-tokenizer tokens: later turns must be fitted


@pytest.fixture(scope="module")
def engine(tiny_model: Path):
    """One engine for the module (startup is the slow part)."""
    client = make_client(str(tiny_model), max_model_len=MAX_MODEL_LEN, dtype="float32", kv_cache_gib=0.25,
                         enforce_eager=True)
    yield client
    client.close()


def check_garbage_episode(trajectory, max_turns: int, max_prompt_tokens: int) -> None:
    """A model that never writes a command block: feedback each turn, nothing runs, graded 0 at the budget."""
    assert (trajectory.end, trajectory.reward, trajectory.resolved, trajectory.steps) == ("turn_budget", 0.0,
                                                                                         False, [])
    assert len(trajectory.turns) == max_turns
    assert all(turn.command is None and "```bash block" in turn.error for turn in trajectory.turns)
    assert all(0 < turn.prompt_tokens <= max_prompt_tokens for turn in trajectory.turns)
    roles = [m["role"] for m in trajectory.messages]
    assert roles == ["system", "user"] + ["assistant", "user"] * (max_turns - 1) + ["assistant"]
    feedback = [m["content"] for m in trajectory.messages[3::2]]
    assert all(text.startswith("Nothing ran: your reply") for text in feedback)
    assert [text.rsplit(" turn(s) left", 1)[0][-1] for text in feedback] == [
        str(max_turns - i) for i in range(1, max_turns)]


def test_vllm_rollout_batches_one_generate_per_round(engine, tiny_model, example_registry, docker_client,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    batches: list[int] = []
    generate = engine._llm.generate
    monkeypatch.setattr(engine._llm, "generate", lambda prompts, *a, **k: batches.append(len(prompts)) or generate(
        prompts, *a, **k))
    policy = LLMPolicy(engine, SamplingSettings(temperature=1.0, max_tokens=32, seed=11, logprobs=True), name="vllm")
    out = tmp_path / "vllm.jsonl"

    started = time.monotonic()
    stats = rollout(policy, EXAMPLE_IDS, out,
                    RolloutConfig(episodes=1, envs=2, max_turns=4, progress=False), registry=example_registry)
    elapsed = time.monotonic() - started

    # 3 episodes of 4 turns on 2 envs: rounds with 2 episodes, then the third alone; one generate per round.
    assert stats.episodes == 3 and stats.rewards == [0.0] * 3
    assert len(batches) == policy.calls == stats.rounds and max(batches) == 2 and sum(batches) == 12
    trajectories = read_jsonl(out)
    for t in trajectories:
        check_garbage_episode(t, 4, MAX_MODEL_LEN - 32)
        assert (t.policy, t.model, t.sampling["max_tokens"], t.sampling["logprobs"]) == ("vllm", str(tiny_model),
                                                                                      32, True)
        for turn in t.turns:  # RL fields: the sampled tokens and their logprobs
            assert len(turn.token_ids) == len(turn.logprobs) == turn.completion_tokens > 0
            assert all(lp <= 0 for lp in turn.logprobs)
    assert any(turn.dropped_messages for t in trajectories for turn in t.turns)  # the context limit bit
    assert not own_containers(docker_client)
    print(f"\nvLLM rollout: 3 episodes x 4 turns on 2 envs in {elapsed:.1f} s "
          f"(policy {stats.policy_s:.1f} s, env {stats.env_s:.1f} s, {stats.rounds} rounds)")


@pytest.fixture(scope="module")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    with serve_vllm(tiny_model, max_model_len=MAX_MODEL_LEN,
                    log=tmp_path_factory.mktemp("agents-server") / "vllm.log") as url:
        yield url


def test_openai_policy_against_a_vllm_server(vllm_server, tiny_model, example_registry, docker_client,
                                             tmp_path: Path):
    sampling = SamplingSettings(temperature=1.0, max_tokens=32, seed=3)
    spec = PolicySpec("openai", vllm_server, sampling, max_model_len=MAX_MODEL_LEN, tokenizer=str(tiny_model))
    policy = make_policy(spec, example_registry)
    out = tmp_path / "openai.jsonl"
    try:
        stats = rollout(policy, EXAMPLE_IDS[:2], out,
                        RolloutConfig(episodes=1, envs=2, max_turns=3, progress=False), registry=example_registry)
    finally:
        policy.close()
    assert stats.episodes == 2 and policy.calls == stats.rounds == 3 and policy.client.usage.conversations == 6
    for t in read_jsonl(out):
        check_garbage_episode(t, 3, MAX_MODEL_LEN - 32)
        assert (t.policy, t.model) == ("openai", "tiny") and t.turns[0].token_ids is None
        first_prompt = t.messages[:2]  # the server counted exactly what our tokenizer counted
        assert t.turns[0].prompt_tokens == policy.count(first_prompt)
    assert not own_containers(docker_client)
