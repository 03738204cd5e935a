"""What a policy is: given the trajectories of its running episodes, the next reply for each.

Batched on purpose: an LLM policy answers every active environment with one generate call.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Sequence

from agents.trajectory import Trajectory, Turn
from cligym_env.spaces import SUBMIT  # noqa: F401  (re-exported: the action that ends an episode)



class Reply(NamedTuple):
    text: str  # the assistant message, as said (see agents/prompt.py for the formats); with tool calls, the rest
    turn: Turn  # what it asks to run (None when malformed) and what it cost
    tool_calls: tuple[dict[str, Any], ...] = ()  # OpenAI-style calls, when the policy acts by tool calls

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message for the trajectory (and for the next prompt)."""
        if not self.tool_calls:
            return {"role": "assistant", "content": self.text}
        return {"role": "assistant", "content": self.text, "tool_calls": [dict(call) for call in self.tool_calls]}


class Policy(Protocol):
    name: str

    def act(self, trajectories: Sequence[Trajectory]) -> list[Reply]:
        """One reply per trajectory, in order."""
        ...
