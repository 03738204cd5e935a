"""What a policy is: given the trajectories of its running episodes, the next command for each.

Batched on purpose: an LLM policy answers every active environment with one generate call.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from agents.trajectory import Trajectory

SUBMIT = "submit"  # the action that ends an episode (same as cligym_env.env.SUBMIT)


class Policy(Protocol):
    name: str

    def act(self, trajectories: Sequence[Trajectory]) -> list[str]:
        """One command (or `submit`) per trajectory, in order."""
        ...
