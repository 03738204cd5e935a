"""Agentic inversion end to end: a scripted model that replays a known good transcript, and the real vLLM
engine on the tiny random model, whose garbage must be rejected cleanly."""

from __future__ import annotations

import json
from typing import Sequence

import pytest

from cligym_env.generator.agentic.run import generate_agentic
from cligym_env.generator.pipeline import RunLog
from cligym_env.generator.report import build_report, to_markdown
from cligym_env.llm import Completion, Message, SamplingSettings, Usage
from cligym_env.tasks import Registry
from tests.conftest import own_containers

PROPOSAL = {
    "name": "Money formatting dependency went missing",
    "category": "dependencies-runtime",
    "target_tests": ["test_inventory.py::test_report"],
    "description": "Uninstall the unitconv package that reports use for money formatting.",
    "expected_failure": "ModuleNotFoundError for unitconv in report tests",
    "recovery_strategy": "Reinstall unitconv from the local wheelhouse.",
}
INVERSION = [
    "Let me look first. <bash>pip list 2>/dev/null | grep -i unitconv</bash>",
    "<record>RUN pip uninstall -y unitconv && rm -rf /root/.cache/pip</record>",
    "<run_tests>test_inventory.py::test_report</run_tests>",
    "<finish>pip install --no-index --find-links /opt/wheelhouse unitconv</finish>",
]
ISSUE = ("# Reports crash with ModuleNotFoundError\n\nSince yesterday every stock report fails with "
         "`ModuleNotFoundError: No module named 'unitconv'`, while totals still work.\n")


class ScriptedModel:
    """Replays a transcript through the `LLMClient` interface, picking the script from the conversation."""

    model = "scripted"

    def __init__(self, proposal: str = json.dumps(PROPOSAL), inversion: Sequence[str] = INVERSION) -> None:
        self.proposal, self.inversion = proposal, list(inversion)
        self.usage = Usage()
        self.calls: list[int] = []

    def chat(self, conversations: Sequence[Sequence[Message]], sampling: SamplingSettings) -> list[Completion]:
        self.calls.append(len(conversations))
        completions = [Completion(self._reply(list(c)), 100, 20, "stop") for c in conversations]
        self.usage.record(completions)
        return completions

    def _reply(self, conversation: list[Message]) -> str:
        first = conversation[0]["content"]
        if first.startswith("You design realistic breakages"):
            return self.proposal
        if first.startswith("You work inside"):
            turn = sum(message["role"] == "assistant" for message in conversation)
            return self.inversion[min(turn, len(self.inversion) - 1)]
        return ISSUE + ("\nHint: look at the installed packages.\n" if "Hint:" in first else "")

    def close(self) -> None:
        pass


def no_containers_left(docker_client) -> bool:
    return not own_containers(docker_client)


def test_scripted_transcript_makes_a_validated_task(docker_client, gold, tmp_path):
    registry, log, model = Registry(tmp_path / "registry"), RunLog(tmp_path / "run.jsonl"), ScriptedModel()
    outcomes = generate_agentic(model, docker_client, registry, gold, log, proposals=1, workers=1, seed=0)
    assert [o.status for o in outcomes] == ["accepted"], outcomes
    assert outcomes[0].tokens > 0 and outcomes[0].category == "dependencies-runtime"
    task = registry.get(outcomes[0].task_ids[0])
    assert task.instruction == ISSUE and task.metadata.generator == "agentic:scripted"
    assert "/bin/sh -c 'pip uninstall -y unitconv && rm -rf /root/.cache/pip'" in task.environment.dockerfile
    assert set(task.tests.fail_to_pass) == {"test_inventory.py::test_report", "test_inventory.py::test_report_command"}
    assert "Hint:" in registry.get(task.id + "-hint").instruction
    assert no_containers_left(docker_client)

    from agents.baselines import NoopPolicy, OraclePolicy
    from agents.rollout import run_episode
    from cligym_env.env import CLIGymEnv

    env = CLIGymEnv(registry)
    assert run_episode(env, OraclePolicy(registry), task_id=task.id).reward == 1.0
    assert run_episode(env, NoopPolicy(), task_id=task.id).reward == 0.0
    env.close()


def test_invalid_proposals_are_retried_once_then_counted(docker_client, gold, tmp_path):
    registry, model = Registry(tmp_path / "registry"), ScriptedModel(proposal="I would break the network.")
    outcomes = generate_agentic(model, docker_client, registry, gold, RunLog(tmp_path / "run.jsonl"), proposals=3,
                                workers=3, seed=0)
    assert [o.reason for o in outcomes] == ["invalid-proposal"] * 3
    assert model.calls[:2] == [3, 3]  # one batched call, one batched retry
    assert len(registry) == 0 and no_containers_left(docker_client)


def test_an_agent_that_never_finishes_hits_its_budget(docker_client, gold, tmp_path):
    model = ScriptedModel(inversion=["<bash>true</bash>"])
    outcomes = generate_agentic(model, docker_client, Registry(tmp_path / "r"), gold, RunLog(tmp_path / "run.jsonl"),
                                proposals=1, workers=1, seed=0, max_steps=3)
    assert [o.reason for o in outcomes] == ["inversion-step-budget"]
    assert no_containers_left(docker_client)


def test_a_repair_that_does_not_repair_is_rejected(docker_client, gold, tmp_path):
    model = ScriptedModel(inversion=[INVERSION[1], "<finish>echo done</finish>"])
    registry = Registry(tmp_path / "r")
    outcomes = generate_agentic(model, docker_client, registry, gold, RunLog(tmp_path / "run.jsonl"), proposals=1,
                                workers=1, seed=0)
    assert [o.reason for o in outcomes] == ["oracle-failed"] and len(registry) == 0


def test_an_unverified_repair_is_kept_only_when_asked_and_flagged(docker_client, gold, tmp_path):
    model = ScriptedModel(inversion=[INVERSION[1], "<finish>echo done</finish>"])
    registry = Registry(tmp_path / "r")
    outcomes = generate_agentic(model, docker_client, registry, gold, RunLog(tmp_path / "run.jsonl"), proposals=1,
                                workers=1, seed=0, keep_unverified=True)
    assert [o.status for o in outcomes] == ["accepted"]
    task = registry.get(outcomes[0].task_ids[0])
    assert task.metadata.generator == "agentic-unverified:scripted"
    assert task.metadata.extra["repair_verified"] is False

    from cligym_env.env import CLIGymEnv

    with pytest.raises(ValueError, match="no task"):
        CLIGymEnv(registry)  # left out by default
    assert len(CLIGymEnv(registry, include_unverified=True).task_ids) == 2


def test_an_interrupted_run_leaves_no_container_and_no_task(docker_client, gold, tmp_path):
    class Interrupted(ScriptedModel):
        def _reply(self, conversation):
            if conversation[0]["content"].startswith("You work inside") and len(conversation) > 4:
                raise KeyboardInterrupt  # Ctrl-C in the middle of an inversion
            return super()._reply(conversation)

    registry = Registry(tmp_path / "r")
    with pytest.raises(KeyboardInterrupt):
        generate_agentic(Interrupted(), docker_client, registry, gold, RunLog(tmp_path / "run.jsonl"), proposals=2,
                         workers=2, seed=0)
    assert len(registry) == 0 and not list(registry.path.glob(".*"))
    assert no_containers_left(docker_client)


@pytest.mark.vllm
def test_real_vllm_engine_garbage_is_rejected_cleanly(docker_client, gold, tmp_path, vllm_engine):
    registry, log = Registry(tmp_path / "registry"), RunLog(tmp_path / "run.jsonl")
    outcomes = generate_agentic(vllm_engine, docker_client, registry, gold, log, proposals=2, workers=2, seed=0,
                                sampling=SamplingSettings(max_tokens=48, seed=0), max_steps=3)
    assert len(outcomes) == 2 and all(o.status == "rejected" for o in outcomes)
    assert all(o.tokens > 0 for o in outcomes)
    report = build_report(outcomes, wall_seconds=60.0)
    assert report.tokens == sum(o.tokens for o in outcomes) and "LLM tokens" in to_markdown(report)
    assert len(registry) == 0 and not list(registry.path.glob(".*tmp*"))
    assert no_containers_left(docker_client)
