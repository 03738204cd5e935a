"""The checks of `CLIGym-v0`'s make-kwargs, and the wrapper that makes Gymnasium's step limit grade.

Every keyword of `gym.make("CLIGym-v0", ...)` that cannot work fails at make time with a `ConfigError` naming the
keyword, the value and what to write instead, never mid-episode.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym

from cligym_env.error import ConfigError
from cligym_env.runtime.sandbox import Limits
from cligym_env.tasks.registry import Registry
from cligym_env.tasks.task import CATEGORIES, SPLITS

AUDIT_MODES = ("enforce", "report")


def check_settings(*, render_mode: str | None, audit: str, limits: Limits, max_steps: int, command_timeout: float,
                    category: str | None, registry: object, split: str | None = None) -> None:
    """Every make-kwarg that cannot work fails here, naming the keyword, the value and what to write instead."""
    if render_mode not in (None, "ansi"):
        raise ConfigError(f"render_mode={render_mode!r} is not supported; use None or 'ansi'")
    if audit not in AUDIT_MODES:
        raise ConfigError(f"audit={audit!r} is not supported; use 'enforce' (tampering earns 0) or 'report'")
    if not isinstance(limits, Limits):
        raise ConfigError(f"limits={limits!r} must be a cligym_env.runtime.sandbox.Limits, e.g. Limits(memory='2g')")
    try:
        limits.disk_bytes  # a malformed size fails now, not mid-episode
    except ValueError as error:
        raise ConfigError(f"limits.disk: {error}") from None
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ConfigError(f"max_steps={max_steps!r} must be a whole number >= 1")
    if isinstance(command_timeout, bool) or not isinstance(command_timeout, (int, float)) or command_timeout <= 0:
        raise ConfigError(f"command_timeout={command_timeout!r} must be a number of seconds > 0")
    if category is not None and category not in CATEGORIES:
        raise ConfigError(f"category={category!r} is not a category; use one of: {', '.join(CATEGORIES)}")
    if split is not None and split not in SPLITS:
        raise ConfigError(f"split={split!r} is not a split; use one of: {', '.join(SPLITS)} (a pack's held-out "
                          "projects are for evaluation only)")
    if registry is not None and not isinstance(registry, (str, Path, Registry)):
        raise ConfigError(f"registry={registry!r} must be a folder path or a Registry")
    if isinstance(registry, (str, Path)) and Path(registry).exists() and not Path(registry).is_dir():
        raise ConfigError(f"registry={str(registry)!r} is a file; give the folder that holds the task folders")


class GradeAtStepLimit(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Makes `gym.make(..., max_episode_steps=N)` grade at step N.

    Gymnasium's `TimeLimit` only sets `truncated` after the step; the container would be left ungraded. Registered
    as an additional wrapper (applied outside `TimeLimit`), this reads the limit from the spec and lowers the
    environment's own `max_steps` to it, so the env grades the N-th step itself."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        limit = env.spec.max_episode_steps if env.spec is not None else None
        if limit is not None and limit > 0:
            env.unwrapped.max_steps = min(env.unwrapped.max_steps, limit)
