"""Policies by CLI name, built from a picklable `PolicySpec` (so a Ray worker can build its own copy)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from agents.baselines import NoopPolicy, OraclePolicy, RandomPolicy
from agents.policy import Policy
from agents.prompt import check_actions
from cligym_env.error import ConfigError
from cligym_env.llm import SamplingSettings
from cligym_env.tasks.registry import Registry

POLICIES = ("vllm", "openai", "oracle", "noop", "random")


@dataclass(frozen=True)
class PolicySpec:
    name: str
    model: str = ""  # vllm: a local model folder; openai: an http(s) endpoint
    sampling: SamplingSettings = SamplingSettings()
    seed: int = 0  # the random policy's
    max_model_len: int | None = None  # vllm: the engine's context; openai: the server's (prompts are fitted to it)
    tokenizer: str | None = None  # openai: a local tokenizer for exact prompt lengths (else an estimate)
    client: dict[str, Any] = field(default_factory=dict)  # more make_client kwargs (dtype, kv_cache_gib, api_key...)
    actions: str = "fenced"  # vllm / openai: "fenced" ```bash blocks or "tools" calls (agents/prompt.py)

    def __post_init__(self) -> None:
        """An unknown name or a model of the wrong kind fails here, before any environment or Ray worker starts."""
        check_actions(self.actions)
        if self.name in ("oracle", "noop", "random"):
            return
        if self.name not in POLICIES:
            close = difflib.get_close_matches(self.name, POLICIES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"unknown policy {self.name!r}; {hint}choose one of {', '.join(POLICIES)}")
        is_url = self.model.startswith(("http://", "https://"))
        if not self.model or is_url != (self.name == "openai"):
            want = ("an http(s) URL of an OpenAI-compatible endpoint" if self.name == "openai"
                    else "a local model folder")
            raise ConfigError(f"policy {self.name} needs --model with {want}, got {self.model!r}")


def make_policy(spec: PolicySpec, registry: Registry) -> Policy:
    if spec.name == "oracle":
        return OraclePolicy(registry)
    if spec.name == "noop":
        return NoopPolicy()
    if spec.name == "random":
        return RandomPolicy(seed=spec.seed)
    from agents import prompt
    from agents.llm_policy import LLMPolicy, token_counter
    from cligym_env.llm import make_client

    kwargs = dict(spec.client)
    if spec.name == "vllm" and spec.max_model_len:
        kwargs["max_model_len"] = spec.max_model_len
    client = make_client(spec.model, **kwargs)
    tools = prompt.tools_for(spec.actions)
    return LLMPolicy(client, spec.sampling, name=spec.name, max_model_len=spec.max_model_len,
                     count=token_counter(client, spec.tokenizer, tools), actions=spec.actions)


def close_policy(policy: Policy) -> None:
    """Stop an LLM policy's engine or connection pool; scripted policies hold nothing."""
    close = getattr(policy, "close", None)
    if close is not None:
        close()
