"""LLM client layer: a real vLLM engine and a real vLLM server on a tiny local model, plus error paths."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import httpx
import pytest

from cligym_env.llm import (
    LLMClient,
    LLMError,
    OpenAIClient,
    SamplingSettings,
    VLLMClient,
    build_tiny_model,
    make_client,
)
from cligym_env.llm.openai_api import api_base
from tests.conftest import free_port, serve_vllm

try:
    import vllm  # noqa: F401

    VLLM_MISSING = ""
except Exception as exc:  # a broken install (e.g. a torchvision mismatch) counts as missing
    VLLM_MISSING = f"vllm is not importable ({exc}); pip install 'cligym-env[vllm]'"

needs_vllm = pytest.mark.skipif(bool(VLLM_MISSING), reason=VLLM_MISSING)
BATCH = [[{"role": "system", "content": "You repair shells."}, {"role": "user", "content": f"fix bug {i}"}]
         for i in range(8)]
SAMPLE = SamplingSettings(temperature=1.0, max_tokens=16, seed=1234)


def test_tiny_model_build_is_idempotent(tiny_model: Path) -> None:
    stamp = (tiny_model / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(tiny_model) == tiny_model
    assert (tiny_model / "model.safetensors").stat().st_mtime_ns == stamp
    assert "<|assistant|>" in (tiny_model / "chat_template.jinja").read_text()


# --- (a) the offline vLLM engine ---------------------------------------------------------


@pytest.fixture(scope="class")  # class scope: the engine is gone before the server starts
def engine(tiny_model: Path):
    client = make_client(str(tiny_model), max_model_len=256, dtype="float32", kv_cache_gib=0.25, enforce_eager=True)
    yield client
    client.close()


@pytest.mark.vllm
@needs_vllm
@pytest.mark.timeout(300)
class TestVLLMEngine:
    def test_batch_is_one_engine_call(self, engine: VLLMClient, monkeypatch: pytest.MonkeyPatch) -> None:
        assert isinstance(engine, VLLMClient) and isinstance(engine, LLMClient)
        calls = []
        real_generate = engine._llm.generate
        monkeypatch.setattr(engine._llm, "generate", lambda *a, **k: calls.append(a) or real_generate(*a, **k))
        before = (engine.usage.calls, engine.usage.conversations, engine.usage.completion_tokens)

        out = engine.chat(BATCH, SAMPLE)

        assert len(calls) == 1 and len(calls[0][0]) == 8
        assert len(out) == 8
        for conv, c in zip(BATCH, out):
            assert c.prompt_tokens == len(engine.prompt_ids(conv)) > 10
            assert 0 < c.completion_tokens <= 16 and c.finish_reason in ("stop", "length")
            assert c.token_ids is None and c.logprobs is None
        assert engine.usage.calls == before[0] + 1
        assert engine.usage.conversations == before[1] + 8
        assert engine.usage.completion_tokens == before[2] + sum(c.completion_tokens for c in out)

    def test_seeded_sampling_is_deterministic(self, engine: VLLMClient) -> None:
        same = [BATCH[0]] * 4
        first, second = engine.chat(same, SAMPLE), engine.chat(same, SAMPLE)
        assert [c.text for c in first] == [c.text for c in second]
        assert len({c.text for c in first}) > 1  # per-conversation seeds: rollouts differ

    def test_logprobs_and_token_ids(self, engine: VLLMClient) -> None:
        out = engine.chat(BATCH[:2], SamplingSettings(max_tokens=8, seed=7, logprobs=True))
        for c in out:
            assert c.token_ids is not None and c.logprobs is not None
            assert len(c.token_ids) == len(c.logprobs) == c.completion_tokens
            assert all(lp <= 0 and math.isfinite(lp) for lp in c.logprobs)

    def test_overlong_conversation_is_refused_alone(self, engine: VLLMClient) -> None:
        long_conv = [{"role": "user", "content": "ls -la " * 300}]
        near_full = [{"role": "user", "content": "ls " * 200}]
        refused, capped, normal = engine.chat([long_conv, near_full, BATCH[0]], SamplingSettings(max_tokens=100))
        assert (refused.finish_reason, refused.completion_tokens, refused.text) == ("length", 0, "")
        assert refused.prompt_tokens > engine.max_model_len
        assert capped.finish_reason == "length"
        assert capped.prompt_tokens + capped.completion_tokens == engine.max_model_len
        assert normal.completion_tokens > 0


# --- (b) the OpenAI-compatible path against a real vLLM server ---------------------------


@pytest.fixture(scope="class")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    with serve_vllm(tiny_model, max_model_len=256, log=tmp_path_factory.mktemp("server") / "vllm.log") as url:
        yield url


@pytest.fixture(scope="class")
def client(vllm_server: str):
    client = make_client(vllm_server, timeout_s=60)
    yield client
    client.close()


@pytest.mark.vllm
@needs_vllm
@pytest.mark.timeout(300)
class TestOpenAIAgainstVLLMServer:
    def test_discovers_model_and_serves_a_batch(self, client: OpenAIClient) -> None:
        assert isinstance(client, OpenAIClient) and client.model == "tiny"
        out = client.chat(BATCH, SAMPLE)
        assert len(out) == 8
        assert all(c.prompt_tokens > 10 and 0 < c.completion_tokens <= 16 for c in out)
        assert client.usage.conversations == 8 and client.usage.calls == 1
        assert client.usage.completion_tokens == sum(c.completion_tokens for c in out)

    def test_seeded_and_logprobs(self, client: OpenAIClient) -> None:
        sampling = SamplingSettings(temperature=1.0, max_tokens=8, seed=99, logprobs=True)
        first, second = client.chat(BATCH[:3], sampling), client.chat(BATCH[:3], sampling)
        assert [c.text for c in first] == [c.text for c in second]
        assert all(c.logprobs is not None and len(c.logprobs) == c.completion_tokens for c in first)

    def test_overlong_prompt_and_unknown_model(self, client: OpenAIClient, vllm_server: str) -> None:
        [refused] = client.chat([[{"role": "user", "content": "ls -la " * 300}]], SAMPLE)
        assert (refused.finish_reason, refused.completion_tokens) == ("length", 0)
        wrong = OpenAIClient(vllm_server, model="no-such-model")
        started = time.monotonic()
        with pytest.raises(LLMError, match=vllm_server):  # a 404 is not retried
            wrong.chat(BATCH[:1], SAMPLE)
        assert time.monotonic() - started < 5
        wrong.close()


# --- (c) errors that must be clear and quick ---------------------------------------------


def test_wrong_model_paths_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match=f"{tmp_path / 'nope'}.*does not exist"):
        make_client(str(tmp_path / "nope"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(LLMError, match="is not a folder"):
        make_client(str(tmp_path / "file"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMError, match=r"empty has no config\.json, tokenizer\.json"):
        make_client(str(tmp_path / "empty"))
    (tmp_path / "base").mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "base" / name).write_text("{}")
    with pytest.raises(LLMError, match=r"base has no chat template"):
        make_client(str(tmp_path / "base"))


def test_missing_vllm_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("config.json", "tokenizer.json", "chat_template.jinja"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(LLMError, match=r"pip install 'cligym-env\[vllm\]'"):
        make_client(str(tmp_path))


@pytest.mark.timeout(30)
def test_unreachable_url_fails_fast_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # closed now: nothing listens there
    with pytest.raises(LLMError, match=f"{url}/v1 failed after 2 attempts"):
        make_client(url, max_retries=1, timeout_s=2)
    client = make_client(url, model="m", max_retries=0, timeout_s=2)
    with pytest.raises(LLMError, match=url):
        client.chat(BATCH[:2], SAMPLE)
    client.close()
    with pytest.raises(LLMError, match="bad endpoint URL"):
        make_client("http://")


def test_api_base() -> None:
    assert api_base("http://h:8000") == "http://h:8000/v1"
    assert api_base("https://h/") == "https://h/v1"
    assert api_base("https://h/openai/v1/") == "https://h/openai/v1"


# --- (d) the SDK's retries and backoff, over a fake HTTP transport ----------------------


def chat_reply(text: str = "ok") -> dict:
    return {
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }  # fmt: skip


def fake_client(replies: list, **kwargs) -> tuple[OpenAIClient, list]:
    """A client whose transport answers `replies` in turn (a status code, a dict, or an exception).

    Error statuses carry `retry-after-ms: 1`, which the SDK honours, so its retries cost no time here.
    """
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, int):
            return httpx.Response(reply, json={"error": {"message": f"status {reply}"}},
                                  headers={"retry-after-ms": "1"})
        return httpx.Response(200, json=reply)

    http = httpx.Client(transport=httpx.MockTransport(handle))
    client = OpenAIClient("http://fake:1", http_client=http, max_workers=1, **kwargs)
    return client, requests


def test_transient_errors_are_retried_by_the_sdk() -> None:
    replies = [httpx.ConnectError("refused"), 429, 503, chat_reply("fixed")]
    client, requests = fake_client(replies, model="m")
    started = time.monotonic()
    [done] = client.chat(BATCH[:1], SAMPLE)
    assert done.text == "fixed" and (done.prompt_tokens, done.completion_tokens) == (5, 1)
    assert len(requests) == 4 and time.monotonic() - started >= 0.3  # the SDK's backoff after the connect error


def test_client_errors_are_not_retried() -> None:
    client, requests = fake_client([400], model="m")
    with pytest.raises(LLMError, match=r"chat at http://fake:1/v1 failed: .*status 400"):
        client.chat(BATCH[:1], SAMPLE)
    assert len(requests) == 1


def test_retries_give_up_naming_the_url() -> None:
    client, requests = fake_client([500, 502, 504], model="m", max_retries=2)
    with pytest.raises(LLMError, match=r"http://fake:1/v1 failed after 3 attempts"):
        client.chat(BATCH[:1], SAMPLE)
    assert len(requests) == 3


def test_tools_are_sent_and_tool_calls_read() -> None:
    call = {"id": "call_7", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls /"}'}}
    reply = chat_reply("")
    reply["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [call]}
    reply["choices"][0]["finish_reason"] = "tool_calls"
    client, requests = fake_client([reply], model="m")
    tools = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]
    [done] = client.chat(BATCH[:1], SAMPLE, tools=tools)
    assert json.loads(requests[0].content)["tools"] == tools
    assert done.tool_calls == (call,) and done.text == "" and done.finish_reason == "tool_calls"


def test_model_discovery_and_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    models = {"object": "list", "data": [{"id": "first", "object": "model", "created": 0, "owned_by": "me"}]}
    client, requests = fake_client([models, chat_reply()])
    assert client.model == "first"
    client.chat(BATCH[:1], SAMPLE)
    assert requests[0].url.path == "/v1/models"
    assert all(r.headers["authorization"] == "Bearer sk-test" for r in requests)
    sent = json.loads(requests[1].content)
    assert (sent["model"], sent["seed"], sent["max_completion_tokens"]) == ("first", 1234, 16)
