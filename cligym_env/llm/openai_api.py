"""OpenAI-compatible HTTP backend (vLLM server, OpenAI, any chat.completions endpoint).

A batch becomes concurrent requests so an HTTP server can batch them itself.
Retries are the SDK's own (`max_retries`: connection errors, timeouts, 408, 409, 429 and 5xx, with exponential
backoff and jitter, honouring `Retry-After`); what finally fails is raised as an `LLMError` naming the URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cligym_env.llm.client import Completion, LLMError, Message, SamplingSettings, Tool, Usage

T = TypeVar("T")


def api_base(url: str) -> str:
    """`http://host:port` means its `/v1`; an explicit path is kept as given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LLMError(f"bad endpoint URL {url!r}: expected http(s)://host[:port][/path]")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path or '/v1'}"


def is_transient(exc: Exception) -> bool:
    """What the SDK retries: the connection failed or timed out, 408, 409, 429, or a 5xx."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code in (408, 409, 429) or exc.status_code >= 500)


def is_context_overflow(exc: Exception) -> bool:
    """The prompt alone overflows the context: vLLM and OpenAI both say so in these words."""
    return "maximum context length" in str(exc) or getattr(exc, "code", None) == "context_length_exceeded"


class OpenAIClient:
    """An `LLMClient` over `openai.OpenAI().chat.completions`.

    `Completion.token_ids` stays None: the API returns token strings, not ids. With `tools`, the server parses
    the calls (vLLM: `vllm serve --enable-auto-tool-choice --tool-call-parser NAME`).
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        max_workers: int = 16,
        http_client: Any = None,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise LLMError(f"the openai package is missing: pip install 'cligym-env[openai]' ({exc})") from exc
        self.url = api_base(url)
        self.max_retries = max_retries
        self._api = openai.OpenAI(
            base_url=self.url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=http_client,
        )
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="llm-http")
        self.usage = Usage()
        try:
            self.model = model or self._first_model()
        except LLMError:
            self.close()
            raise

    def _first_model(self) -> str:
        models = self._named(lambda: self._api.models.list().data, "list models")
        if not models:
            raise LLMError(f"{self.url}/models lists no model; pass model=...")
        return models[0].id

    def _named(self, call: Callable[[], T], what: str) -> T:
        """Run `call` (the SDK retries it); a final failure becomes an `LLMError` naming the URL."""
        import openai

        try:
            return call()
        except openai.OpenAIError as exc:
            tries = f" after {self.max_retries + 1} attempts" if self.max_retries and is_transient(exc) else ""
            raise LLMError(f"{what} at {self.url} failed{tries}: {exc}") from exc

    def chat(
        self, conversations: Sequence[Sequence[Message]], sampling: SamplingSettings,
        tools: Sequence[Tool] | None = None,
    ) -> list[Completion]:
        futures = [
            self._pool.submit(self._named, lambda i=i, c=conv: self._one(c, sampling, i, tools), "chat")
            for i, conv in enumerate(conversations)
        ]
        completions = [f.result() for f in futures]
        self.usage.record(completions)
        return completions

    def _one(self, conversation: Sequence[Message], sampling: SamplingSettings, index: int,
             tools: Sequence[Tool] | None = None) -> Completion:
        import openai

        optional: dict[str, Any] = {"tools": list(tools)} if tools else {}
        if (seed := sampling.seed_for(index)) is not None:
            optional["seed"] = seed
        if sampling.stop:
            optional["stop"] = list(sampling.stop)
        if sampling.logprobs:
            optional["logprobs"] = True
        try:
            response = self._api.chat.completions.create(
                model=self.model,
                messages=[dict(m) for m in conversation],
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_completion_tokens=sampling.max_tokens,
                **optional,
            )
        except openai.BadRequestError as exc:
            if not is_context_overflow(exc):
                raise
            empty = () if sampling.logprobs else None  # refused like the offline engine does
            return Completion("", 0, 0, "length", logprobs=empty)
        choice = response.choices[0]
        logprobs = None
        if sampling.logprobs and choice.logprobs is not None and choice.logprobs.content is not None:
            logprobs = tuple(t.logprob for t in choice.logprobs.content)
        usage = response.usage
        calls = tuple({"id": call.id, "type": "function",
                       "function": {"name": call.function.name, "arguments": call.function.arguments}}
                      for call in choice.message.tool_calls or () if getattr(call, "function", None) is not None)
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason or "stop",
            logprobs=logprobs,
            tool_calls=calls,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api.close()
