"""CLI-Gym tasks as a SkyRL-Gym text environment (`skyrl_gym.envs.base_text_env.BaseTextEnv`), registered "cligym".

    import agents.skyrl_env  # registers env_class "cligym" with skyrl_gym
    env = skyrl_gym.make("cligym", env_config={"registry": "tasks/"}, extras={"task_id": ID, "max_turns": 30})
    messages, info = env.init([])          # system prompt + the issue; a fresh container
    out = env.step(model_reply)            # {"observations": [...], "reward", "done", "metadata"}
    env.close()                            # removes the container (idempotent)

The reply format is the fenced ```bash block of agents/prompt.py (or the word `submit`); SkyRL's generator passes
the model's raw text to `step`. The reward is 0 until the episode ends (on `submit`, the turn budget or the step
limit), then the real grader's. Dataset rows name the task in `extras["task_id"]` (SkyRL's per-row `extras`).
"""

from __future__ import annotations

import logging
from typing import Any

from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
from skyrl_gym.envs.registration import register, registry

from agents import prompt
from cligym_env.env import SUBMIT, CLIGymEnv

logger = logging.getLogger(__name__)
ENV_ID = "cligym"


class CLIGymTextEnv(BaseTextEnv):
    """One episode of one task; SkyRL makes one instance per trajectory and closes it."""

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        config, extras = dict(env_config or {}), dict(extras or {})
        self.task_id: str | None = extras.get("task_id") or (extras.get("extra_info") or {}).get("task_id")
        self.max_turns = int(extras.get("max_turns", config.get("max_turns", 30)))
        self.output_limit = int(config.get("output_limit", 4000))
        self.env = CLIGymEnv(config.get("registry"), task_ids=[self.task_id] if self.task_id else None,
                             max_steps=self.max_turns + 1, command_timeout=float(config.get("command_timeout", 60)))
        self.info: dict[str, Any] = {}

    def init(self, prompt_messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Start the container; the row's messages (default: the system prompt) followed by the issue."""
        instruction, info = self.env.reset(options={"task_id": self.task_id} if self.task_id else None)
        self.task_id = info["task_id"]
        system = list(prompt_messages) or prompt.first_messages(instruction)[:1]
        return system + [{"role": "user", "content": instruction}], {"task_id": self.task_id}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self.turns += 1
        left = self.max_turns - self.turns
        command, error = prompt.parse_reply(action)
        if command is None and left > 0:
            return self._output(prompt.feedback(error, left))
        observation, reward, terminated, truncated, info = self.env.step(SUBMIT if command is None else command)
        if not (terminated or truncated) and left <= 0:  # out of turns: grade what the policy left
            observation, reward, terminated, truncated, info = self.env.step(SUBMIT)
        if terminated or truncated:
            self.info = dict(info)
            logger.info("%s graded: reward %s", self.task_id, reward)
            return BaseTextEnvStepOutput(observations=[], reward=float(reward), done=True,
                                         metadata={"tests": info.get("tests", {}), "resolved": info.get("resolved"),
                                                   "error": info.get("error")})
        return self._output(prompt.observation(observation, info["exit_code"], info["timed_out"], self.output_limit))

    def _output(self, text: str) -> BaseTextEnvStepOutput:
        return BaseTextEnvStepOutput(observations=[{"role": "user", "content": text}], reward=0.0, done=False,
                                     metadata={})

    def get_metrics(self) -> dict[str, Any]:
        return {"turns": self.turns, "resolved": float(bool(self.info.get("resolved")))}

    def close(self) -> None:
        self.env.close()


def register_env() -> None:
    """Register `CLIGymTextEnv` with skyrl_gym as "cligym" (done on import; safe to call again)."""
    if ENV_ID not in registry:
        register(id=ENV_ID, entry_point=f"{__name__}:CLIGymTextEnv")


register_env()
