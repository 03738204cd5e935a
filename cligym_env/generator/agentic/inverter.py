"""Step 2 of agentic inversion: an LLM agent carries a proposal out inside a fresh gold container.

Reply format (exactly one action per reply):
    <bash>command</bash>            look around; the output comes back (changes made here are NOT kept)
    <record>RUN shell</record>      change the environment: runs now and becomes a Dockerfile instruction
    <run_tests>ids</run_tests>      run the project's tests (selected ids, or all when empty)
    <finish>script</finish>         done; the body is the bash script that repairs the broken machine
Only recorded RUN lines survive: validation rebuilds the image from them alone, so the Dockerfile is the
truth, as in the paper. Many inversion runs advance in lock-step: one LLM call per step for all of them.
"""

from __future__ import annotations

import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import docker

from cligym_env.generator.agentic.proposal import Proposal
from cligym_env.generator.types import EXPECTED_FAILURES, Breakage, GoldEnvironment
from cligym_env.grading import run_tests
from cligym_env.llm import LLMClient, Message, SamplingSettings
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.spaces import trim

ACTION = re.compile(r"<(bash|record|run_tests|finish)>(.*?)</\1>", flags=re.S)
FEEDBACK_CHARS = 3000

SYSTEM = """You work inside a healthy Docker container of a Python project whose tests pass. Your job is to \
break it exactly as the proposal says, the way it could have broken by accident, so that the named tests fail.
Reply with exactly one action:
<bash>command</bash> to inspect (changes made this way are discarded),
<record>RUN shell command</record> to change the environment (it runs now and is recorded as a Dockerfile line),
<run_tests>test ids separated by spaces, or nothing for all</run_tests> to check the effect,
<finish>bash script</finish> when the tests fail as intended; the script must repair the machine from inside, \
offline (wheels are kept in {wheelhouse}, Debian archives in {apt}), the way a person would.
Rules: change the environment only through <record> RUN lines; never touch the tests; leave no backups, notes or \
comments that reveal the change; do not make it look deliberate; clean caches that would give the answer away; \
do not use ENV, since a person could not repair that from inside."""


@dataclass
class Inversion:
    """One agent's run: its conversation, the Dockerfile lines it recorded, and how it ended."""

    proposal: Proposal
    messages: list[Message]
    sandbox: Sandbox | None = None
    records: list[str] = field(default_factory=list)
    repair: str = ""
    failure: str = ""  # why it ended without a candidate (empty on success)
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    finished: bool = False

    @property
    def active(self) -> bool:
        return not self.finished and not self.failure

    def breakage(self) -> Breakage:
        slug = re.sub(r"[^a-z0-9]+", "-", self.proposal.name.lower()).strip("-")[:48] or "proposal"
        return Breakage("agentic", self.proposal.category, slug, self.proposal.description, "\n".join(self.records),
                        self.repair, hint="", extra={"expected_failure": self.proposal.expected_failure})


def invert(llm: LLMClient, client: docker.DockerClient, gold: GoldEnvironment, proposals: Sequence[Proposal], *,
           sampling: SamplingSettings, max_steps: int = 30, max_tokens: int = 200_000,
           max_seconds: float = 900.0) -> list[Inversion]:
    """Run one agent per proposal to the end; every container is removed whatever happens."""
    runs = [Inversion(p, [{"role": "system", "content": SYSTEM.format(wheelhouse=gold.probe.wheelhouse,
                                                                         apt=gold.probe.apt_archives)},
                          {"role": "user", "content": _brief(p)}]) for p in proposals]
    started = time.monotonic()
    try:
        for run in runs:
            run.sandbox = Sandbox(gold.image, task_id=f"invert-{gold.project}"[:40], client=client).start()
        with ThreadPoolExecutor(max_workers=max(len(runs), 1)) as pool:
            while active := [run for run in runs if run.active]:
                completions = llm.chat([run.messages for run in active], sampling)
                for run, completion in zip(active, completions):
                    run.messages.append({"role": "assistant", "content": completion.text})
                    run.tokens += completion.prompt_tokens + completion.completion_tokens
                    run.steps += 1
                replies = [c.text for c in completions]
                feedback = list(pool.map(lambda run, reply: _act(gold, run, reply), active, replies))
                for run, text in zip(active, feedback):
                    if text:
                        run.messages.append({"role": "user", "content": text})
                    if run.active and run.steps >= max_steps:
                        run.failure = "step-budget"
                    elif run.active and run.tokens >= max_tokens:
                        run.failure = "token-budget"
                    elif run.active and time.monotonic() - started >= max_seconds:
                        run.failure = "time-budget"
    finally:
        for run in runs:
            run.seconds = time.monotonic() - started
            if run.sandbox is not None:
                run.sandbox.close()
                run.sandbox = None
    return runs


def _brief(proposal: Proposal) -> str:
    return (f"Proposal: {proposal.name} ({proposal.category}).\nWhat to do: {proposal.description}\n"
            f"Tests that must fail: {' '.join(proposal.target_tests)}\nExpected failure: {proposal.expected_failure}\n"
            f"Recovery: {proposal.recovery_strategy}")


def _act(gold: GoldEnvironment, run: Inversion, reply: str) -> str:
    """Carry out one action; return the feedback for the model. A broken run ends alone, not the batch."""
    try:
        return _dispatch(gold, run, reply)
    except EXPECTED_FAILURES as error:  # Docker, a build, the host: this run fails, the batch goes on
        run.failure = f"error: {type(error).__name__}: {str(error)[:200]}"
        return ""


def _dispatch(gold: GoldEnvironment, run: Inversion, reply: str) -> str:
    assert run.sandbox is not None
    match = ACTION.search(reply)
    if not match:
        return "Your reply had no action. Reply with exactly one <bash>, <record>, <run_tests> or <finish> block."
    kind, body = match.group(1), match.group(2).strip()
    if kind == "bash":
        return trim(run.sandbox.run(body, timeout=120).output, FEEDBACK_CHARS) or "(no output)"
    if kind == "record":
        if not body.startswith("RUN ") or "\n" in body.strip():
            return "A record must be a single Dockerfile line starting with RUN."
        result = run.sandbox.run(f"sh -c {shlex.quote(body[4:])}", timeout=300)
        if result.exit_code != 0:
            output = trim(result.output, FEEDBACK_CHARS)
            return f"That RUN failed (exit {result.exit_code}) and was not recorded:\n{output}"
        run.records.append(body)
        return f"Recorded ({len(run.records)} lines so far). Output:\n{trim(result.output, FEEDBACK_CHARS)}"
    if kind == "run_tests":
        outcomes = run_tests(run.sandbox, gold.tests).outcomes
        wanted = body.split() or sorted(outcomes)
        failing = [t for t in wanted if outcomes.get(t, "missing") != "passed"]
        return f"{len(wanted) - len(failing)} passed, {len(failing)} not passing: {' '.join(failing[:20])}"
    if not run.records:
        return "Nothing is recorded yet: make the change with <record>RUN ...</record> before finishing."
    run.repair, run.finished = body, True
    return ""
