"""Concurrency: signal dispositions and start methods imposed on every Python process by a start-up hook, and the
compiled modules of multiprocessing, asyncio (contextvars) and pseudo-terminals damaged."""

from __future__ import annotations

import random

from cligym_env.generator.operators._base import (APT, NO_ARCHIVES, PROCESS_EVENTS, Draft, Operator, Target, hook_draft,
                                                  hook_targets)
from cligym_env.generator.operators.infrastructure import damage_extension, extension_targets
from cligym_env.generator.types import GoldProbe

CATEGORY = "concurrency"

SIGNALS = {
    "ignore-sigchld": ("import signal; signal.signal(signal.SIGCHLD, signal.SIG_IGN)",
                       "ignores SIGCHLD, so child exit statuses are lost"),
    "ignore-sigterm": ("import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)",
                       "ignores SIGTERM, and every child it starts inherits that"),
    "block-sigterm-sigint": ("import signal; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})",
                             "blocks SIGTERM and SIGINT, and every child it starts inherits the mask"),
    "ignore-sigalrm": ("import signal; signal.signal(signal.SIGALRM, signal.SIG_IGN)", "ignores SIGALRM"),
}


def _signal_targets(probe: GoldProbe) -> list[Target]:
    return hook_targets(probe, list(SIGNALS), modules=("subprocess", "multiprocessing", "signal", "asyncio"),
                        events=(*PROCESS_EVENTS, "signal.pthread_kill"))


def _signal(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    name = target.data[0]
    code, what = SIGNALS[name]
    return hook_draft(probe, rng, target, code,
                      f"every Python process {what}",
                      "Subprocesses started from Python do not behave or stop as expected.")


START_METHODS = ("spawn", "forkserver")
MULTIPROCESSING_EXTENSIONS = [("multiprocessing", "_multiprocessing"), ("concurrent", "_multiprocessing"),
                              ("multiprocessing", "_posixshmem")]
# Extensions with no pure-Python fallback that event loops and child-process code import: contextvars (every
# asyncio import), termios (pty and tty, how programs are driven through a pseudo-terminal).
ASYNC_EXTENSIONS = [("asyncio", "_contextvars"), ("contextvars", "_contextvars"), ("pty", "termios"),
                    ("tty", "termios")]


def _start_targets(probe: GoldProbe) -> list[Target]:
    return hook_targets(probe, START_METHODS, modules=("multiprocessing", "concurrent.futures.process"),
                        events=("os.fork",))


def _start_method(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """Forcing another start method breaks code that relies on fork: closures, lambdas, inherited state."""
    method = target.data[0]
    code = f"import multiprocessing; multiprocessing.set_start_method(\"{method}\", force=True)"
    return hook_draft(probe, rng, target, code,
                      f"forces the {method} start method on multiprocessing",
                      "Work handed to worker processes fails although it runs fine in-process.")


OPERATORS = [
    Operator("signal-hook", CATEGORY, _signal_targets, _signal, NO_ARCHIVES),
    Operator("start-method-hook", CATEGORY, _start_targets, _start_method, NO_ARCHIVES),
    Operator("damage-multiprocessing-module", CATEGORY,
             lambda p: extension_targets(p, MULTIPROCESSING_EXTENSIONS), damage_extension, APT),
    Operator("damage-async-module", CATEGORY, lambda p: extension_targets(p, ASYNC_EXTENSIONS), damage_extension, APT),
]
