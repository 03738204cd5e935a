"""Run a policy through `CLIGym-v0` episodes and record each as a `Trajectory`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents.policy import SUBMIT, Policy
from agents.trajectory import Step, Trajectory


def run_episode(env: gym.Env, policy: Policy, *, task_id: str | None = None, seed: int | None = None) -> Trajectory:
    """One episode, start to grade. The environment's container is gone when this returns."""
    options: dict[str, Any] = {"task_id": task_id} if task_id else {}
    instruction, info = env.reset(seed=seed, options=options)
    trajectory = Trajectory(task_id=info["task_id"], instruction=instruction, policy=policy.name)
    while not trajectory.done:
        command = policy.act([trajectory])[0]
        observation, reward, terminated, truncated, info = env.step(command)
        if command.strip() == SUBMIT:
            trajectory.submitted = True
        else:
            last = env.unwrapped.last_result
            trajectory.steps.append(Step(command, observation, info["exit_code"], last.duration if last else 0.0,
                                         info["timed_out"], info["output_truncated"]))
        if terminated or truncated:
            trajectory.reward = float(reward)
            trajectory.resolved = bool(info.get("resolved"))
            trajectory.tests = dict(info.get("tests", {}))
    return trajectory
