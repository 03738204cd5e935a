"""One episode in one environment: records the policy's replies, runs their commands, keeps the grade.

Shared by `run_episode`, the lock-step pool and the Ray workers, so every path writes the same trajectories.
"""

from __future__ import annotations

from dataclasses import asdict

import gymnasium as gym

from agents import prompt
from agents.policy import SUBMIT, Policy, Reply
from agents.trajectory import Step, Trajectory


class Episode:
    def __init__(self, env: gym.Env, trajectory: Trajectory, *, max_turns: int, output_limit: int) -> None:
        self.env, self.trajectory = env, trajectory
        self.max_turns, self.output_limit = max_turns, output_limit

    @classmethod
    def start(cls, env: gym.Env, policy: Policy, task_id: str | None = None, *, episode: int = 0,
              seed: int | None = None, max_turns: int = 50, output_limit: int = 4000) -> Episode:
        """Reset `env` (a fresh container) and open the conversation with the issue text."""
        instruction, info = env.reset(seed=seed, options={"task_id": task_id} if task_id else {})
        sampling, actions = getattr(policy, "sampling", None), getattr(policy, "actions", "fenced")
        trajectory = Trajectory(task_id=info["task_id"], instruction=instruction, policy=policy.name,
                                episode=episode, model=getattr(policy, "model", ""),
                                sampling=asdict(sampling) if sampling is not None else {},
                                tools=prompt.tools_for(actions), messages=prompt.first_messages(instruction, actions))
        return cls(env, trajectory, max_turns=max_turns, output_limit=output_limit)

    def apply(self, reply: Reply) -> None:
        """Record `reply` and run what it asks for (blocks on the container: run it in a worker thread)."""
        trajectory = self.trajectory
        trajectory.messages.append(reply.message)
        trajectory.turns.append(reply.turn)
        left = self.max_turns - len(trajectory.turns)
        if reply.turn.command is not None:
            self._run(reply.turn.command, left)
        elif left > 0:  # nothing runs; the model is told why
            trajectory.messages += prompt.answer(reply.message,
                                                 prompt.feedback(reply.turn.error, left, trajectory.tools))
        if not trajectory.done and left <= 0:  # out of turns: grade the environment as the policy left it
            self._run(SUBMIT, left)
            trajectory.end = "turn_budget"

    def _run(self, command: str, left: int) -> None:
        trajectory = self.trajectory
        observation, reward, terminated, truncated, info = self.env.step(command)
        if command.strip() != SUBMIT:
            trajectory.steps.append(Step(command, observation, info["exit_code"], self.env.unwrapped.last_step_seconds,
                                         info["timed_out"], info["output_truncated"]))
            if not (terminated or truncated) and left > 0:
                text = prompt.observation(observation, info["exit_code"], info["timed_out"], self.output_limit)
                trajectory.messages += prompt.answer(trajectory.messages[-1], text)
        if terminated or truncated:
            trajectory.reward, trajectory.resolved = float(reward), bool(info.get("resolved"))
            trajectory.tests = dict(info.get("tests", {}))
            trajectory.tamper, trajectory.error = list(info.get("tamper", [])), info.get("error")
            trajectory.end = "error" if trajectory.error else "submitted" if terminated else "max_steps"
