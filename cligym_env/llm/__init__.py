"""LLM clients for the policies and the task generator: vLLM offline or any OpenAI-compatible server."""

from cligym_env.llm.client import (
    Completion,
    LLMClient,
    LLMError,
    Message,
    SamplingSettings,
    Tool,
    ToolCall,
    Usage,
    make_client,
    template_messages,
)
from cligym_env.llm.openai_api import OpenAIClient
from cligym_env.llm.tiny_model import build_tiny_model
from cligym_env.llm.vllm_engine import VLLMClient

__all__ = [
    "Completion",
    "LLMClient",
    "LLMError",
    "Message",
    "OpenAIClient",
    "SamplingSettings",
    "Tool",
    "ToolCall",
    "Usage",
    "VLLMClient",
    "build_tiny_model",
    "make_client",
    "template_messages",
]
