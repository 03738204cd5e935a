"""`cligym generate --mode agentic`: proposals -> inversion agents -> validation -> LLM-written issues -> registry.

Shares validation, packaging, the run log and the report with rule-based mode. Invalid proposals, failed
inversions and rejected candidates are all logged with their reason and their token spend.
"""

from __future__ import annotations

import random
from typing import Callable

import docker

from cligym_env.generator.agentic.inverter import invert
from cligym_env.generator.agentic.issue_writer import write_issues
from cligym_env.generator.agentic.proposal import Proposal, ProposalError, parse_proposal, proposal_messages
from cligym_env.generator.pipeline import Outcome, RunLog, package, store
from cligym_env.generator.types import GoldEnvironment
from cligym_env.generator.validate import Rejected, Validated, validate
from cligym_env.llm import LLMClient, SamplingSettings
from cligym_env.tasks import Registry
from cligym_env.tasks.task import UNVERIFIED


def generate_agentic(llm: LLMClient, client: docker.DockerClient, registry: Registry, gold: GoldEnvironment,
                     log: RunLog, *, proposals: int, workers: int, seed: int,
                     sampling: SamplingSettings = SamplingSettings(temperature=0.8, max_tokens=1024),
                     max_steps: int = 30, keep_unverified: bool = False,
                     on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Try `proposals` proposals (minus those a previous run already tried), `workers` inversions at a time.

    A candidate whose repair script does not repair is rejected, unless `keep_unverified`: then it is kept with
    the generator `agentic-unverified:<model>`, which `CLIGym-v0` leaves out unless asked (`include_unverified`)."""
    done = sum(o.project == gold.project and o.operator == "agentic" for o in log.outcomes)
    memory = [o.target for o in log.outcomes if o.project == gold.project and o.operator == "agentic"]
    results: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        log.add(outcome)
        results.append(outcome)
        on_outcome(outcome)

    while done < proposals:
        batch = min(workers, proposals - done)
        rng = random.Random(f"{seed}-{done}")  # a resumed run continues with fresh, reproducible draws
        valid, invalid_tokens = _propose(llm, gold, rng, memory, batch, sampling)
        for tokens in invalid_tokens:
            record(Outcome(gold.project, "agentic", "", "invalid-proposal", "rejected", "invalid-proposal",
                           tokens=tokens))
        inversions = invert(llm, client, gold, [p for p, _ in valid], sampling=sampling, max_steps=max_steps)
        accepted: list[tuple[Outcome, Validated]] = []
        for (proposal, tokens), run in zip(valid, inversions):
            memory.append(proposal.name)
            outcome = Outcome(gold.project, "agentic", proposal.category, run.breakage().target, "rejected",
                              seconds=round(run.seconds, 2), tokens=tokens + run.tokens)
            if run.failure or not run.finished:
                outcome.reason = f"inversion-{run.failure or 'unfinished'}".split(":")[0]
                record(outcome)
                continue
            try:
                accepted.append((outcome, validate(client, gold, run.breakage(), verify_repair=not keep_unverified)))
            except Rejected as rejection:
                outcome.reason = rejection.reason
                record(outcome)
        before = llm.usage.prompt_tokens + llm.usage.completion_tokens
        issues = write_issues(llm, gold.project, [v for _, v in accepted], rng, sampling)
        share = (llm.usage.prompt_tokens + llm.usage.completion_tokens - before) // max(len(accepted), 1)
        for (outcome, validated), texts in zip(accepted, issues):
            outcome.tokens += share
            kind = "agentic" if validated.repair_verified else UNVERIFIED
            store(registry, outcome, validated, package(gold, validated, seed=seed, instructions=texts,
                                                          generator=f"{kind}:{llm.model}"))
            record(outcome)
        done += batch
    return results


def _propose(llm: LLMClient, gold: GoldEnvironment, rng: random.Random, memory: list[str], count: int,
             sampling: SamplingSettings) -> tuple[list[tuple[Proposal, int]], list[int]]:
    """Batched proposals; each invalid one is retried once with its error. Returns (valid, tokens of invalid)."""
    pending = [(proposal_messages(gold, rng, memory), 0) for _ in range(count)]  # (conversation, tokens so far)
    valid: list[tuple[Proposal, int]] = []
    invalid: list[int] = []
    for attempt in (0, 1):
        if not pending:
            break
        replies = llm.chat([conversation for conversation, _ in pending], sampling)
        retry = []
        for (conversation, spent), completion in zip(pending, replies):
            spent += completion.prompt_tokens + completion.completion_tokens
            try:
                valid.append((parse_proposal(completion.text, gold), spent))
            except ProposalError as error:
                if attempt == 0:
                    retry.append(([*conversation, {"role": "assistant", "content": completion.text},
                                   {"role": "user", "content": f"Invalid proposal: {error}. Answer again."}], spent))
                else:
                    invalid.append(spent)
        pending = retry
    return valid, invalid
