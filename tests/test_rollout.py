"""Lock-step rollouts over a pool of real environments: rewards, the JSONL schema, batching and resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agents.baselines import PLAUSIBLE_COMMANDS, NoopPolicy, OraclePolicy, RandomPolicy
from agents.prompt import scripted_reply
from agents.rollout import RolloutConfig, rollout, run_episode
from agents.trajectory import SCHEMA_VERSION, Trajectory, append_jsonl, read_jsonl
from cligym_env.env import CLIGymEnv
from tests.conftest import own_containers

EXAMPLE_IDS = ["example-bad-permission", "example-corrupted-config", "example-missing-module"]


class CountingOracle(OraclePolicy):
    """The oracle, recording the batch size of every act call."""

    def __init__(self, registry) -> None:
        super().__init__(registry)
        self.batches: list[int] = []

    def act(self, trajectories):
        self.batches.append(len(trajectories))
        return super().act(trajectories)


class Looker:
    """Never submits: only the turn budget ends its episodes."""

    name = "looker"

    def act(self, trajectories):
        return [scripted_reply("pwd") for _ in trajectories]


def no_containers(docker_client) -> bool:
    """None of this process's containers is left (other processes' are theirs)."""
    return not own_containers(docker_client)


def test_oracle_rollout_over_two_envs_solves_every_example(example_registry, docker_client, tmp_path: Path):
    out = tmp_path / "oracle.jsonl"
    policy = CountingOracle(example_registry)
    stats = rollout(policy, EXAMPLE_IDS, out,
                    RolloutConfig(episodes=1, envs=2, progress=False), registry=example_registry)

    assert stats.episodes == 3 and stats.rewards == [1.0, 1.0, 1.0] and stats.skipped == 0
    # Lock-step: one act call per round, never more episodes at once than envs; 3 episodes of 2 turns each.
    assert len(policy.batches) == stats.rounds and max(policy.batches) == 2 and sum(policy.batches) == 6
    assert 0 < stats.env_s <= stats.wall_s + 0.1 and stats.policy_s < stats.env_s
    lines = out.read_text().splitlines()
    trajectories = [Trajectory.from_json(line) for line in lines]
    assert [Trajectory.from_json(t.to_json()).to_json() for t in trajectories] == lines  # lossless round trip
    assert sorted(t.task_id for t in trajectories) == EXAMPLE_IDS
    for t in trajectories:
        raw = json.loads(t.to_json())
        assert raw["schema_version"] == SCHEMA_VERSION and t.policy == "oracle" and t.episode == 0
        assert (t.reward, t.resolved, t.end) == (1.0, True, "submitted") and set(t.tests.values()) == {"passed"}
        assert [m["role"] for m in t.messages] == ["system", "user", "assistant", "user", "assistant"]
        assert t.messages[1]["content"] == t.instruction and t.messages[2]["content"].startswith("```bash\n")
        assert t.messages[3]["content"].startswith("exit code 0") and t.messages[4]["content"] == "submit"
        assert len(t.steps) == 1 and t.steps[0].exit_code == 0 and t.steps[0].duration > 0
        assert [turn.command for turn in t.turns] == [t.steps[0].command, "submit"]
    assert no_containers(docker_client)


def test_resume_skips_finished_episodes_and_survives_a_torn_line(example_registry, docker_client, tmp_path: Path):
    out = tmp_path / "noop.jsonl"
    first = rollout(NoopPolicy(), EXAMPLE_IDS[:2], out,
                    RolloutConfig(episodes=1, envs=2, progress=False), registry=example_registry)
    assert first.episodes == 2
    before = out.read_bytes()
    with out.open("ab") as sink:
        sink.write(b'{"task_id": "example-bad-perm')  # a crash in the middle of a write

    again = rollout(NoopPolicy(), EXAMPLE_IDS[:2], out,
                    RolloutConfig(episodes=2, envs=2, progress=False), registry=example_registry)

    assert (again.episodes, again.skipped) == (2, 2)
    assert out.read_bytes().startswith(before)  # earlier lines untouched, torn line gone
    keys = sorted((t.task_id, t.episode) for t in read_jsonl(out))
    assert keys == [(task_id, index) for task_id in EXAMPLE_IDS[:2] for index in (0, 1)]
    assert all(t.reward == 0.0 and t.end == "submitted" and not t.steps for t in read_jsonl(out))
    nothing = rollout(NoopPolicy(), EXAMPLE_IDS[:2], out,
                      RolloutConfig(episodes=2, envs=2, progress=False), registry=example_registry)
    assert (nothing.episodes, nothing.skipped, nothing.rounds) == (0, 4, 0)
    assert no_containers(docker_client)


def test_random_policy_is_seeded_per_episode_and_fails(example_registry, docker_client, tmp_path: Path):
    out = tmp_path / "random.jsonl"
    stats = rollout(RandomPolicy(seed=3), EXAMPLE_IDS[:1], out,
                    RolloutConfig(episodes=3, envs=3, progress=False), registry=example_registry)
    assert stats.episodes == 3
    for t in read_jsonl(out):
        assert t.reward == 0.0 and all(command in PLAUSIBLE_COMMANDS for command in t.commands)
        assert len(t.steps) <= 3 and t.turns[-1].command == "submit"
        plan = RandomPolicy(seed=3)  # the same draw when replayed alone
        replay = Trajectory(t.task_id, t.instruction, episode=t.episode)
        for step in t.steps:
            assert plan.act([replay])[0].turn.command == step.command
            replay.turns.append(t.turns[len(replay.turns)])
    assert len({tuple(t.commands) for t in read_jsonl(out)}) > 1  # episodes differ


def test_run_episode_turn_budget_ends_with_a_grade(example_registry, docker_client):
    env = CLIGymEnv(example_registry, max_steps=10, command_timeout=10)
    try:
        t = run_episode(env, Looker(), task_id="example-bad-permission", max_turns=2)
    finally:
        env.close()
    assert (t.end, t.reward, len(t.turns), t.commands) == ("turn_budget", 0.0, 2, ["pwd", "pwd"])
    assert [m["role"] for m in t.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert no_containers(docker_client)


def test_append_jsonl_round_trips_every_field(tmp_path: Path):
    from agents.trajectory import Step, Turn

    t = Trajectory("task", "fix it", policy="vllm", episode=2, model="m", sampling={"temperature": 0.5},
                   messages=[{"role": "user", "content": "é\u2028x"}], turns=[Turn(None, "no block", 5, 3, "length",
                   2, [1, 2, 3], [-0.1, -0.2, -0.3])], steps=[Step("ls", "a\nb", 0, 0.25)], reward=0.0,
                   tests={"t::a": "failed"}, end="turn_budget", extra={"node": "n1"})
    append_jsonl(tmp_path / "t.jsonl", [t, t])
    assert read_jsonl(tmp_path / "t.jsonl") == [t, t]
    with pytest.raises(ValueError, match="schema_version"):
        Trajectory.from_json(json.dumps({**json.loads(t.to_json()), "schema_version": 1}))


class FlakyEnv(CLIGymEnv):
    """Docker trouble on one task: its submit raises (in the round where the other episodes end)."""

    def step(self, action):
        if self.task.id == "example-missing-module" and action == "submit":
            raise RuntimeError("docker went away")
        return super().step(action)


def test_an_env_failure_keeps_finished_episodes_and_leaves_no_container(example_registry, docker_client,
                                                                         tmp_path: Path):
    out = tmp_path / "flaky.jsonl"
    with pytest.raises(RuntimeError, match="docker went away"):
        rollout(OraclePolicy(example_registry), EXAMPLE_IDS, out,
                RolloutConfig(episodes=1, envs=3, progress=False),
                registry=example_registry, env_factory=lambda: FlakyEnv(example_registry, max_steps=31))
    assert sorted(t.task_id for t in read_jsonl(out)) == EXAMPLE_IDS[:2]  # the same round's successes were saved
    assert no_containers(docker_client)
    resumed = rollout(OraclePolicy(example_registry), EXAMPLE_IDS, out,
                      RolloutConfig(episodes=1, envs=3, progress=False), registry=example_registry)
    assert (resumed.episodes, resumed.skipped, resumed.rewards) == (1, 2, [1.0])


class Saboteur:
    """Kills its own container's main process on one task (the policy's doing), behaves like the oracle elsewhere."""

    name = "saboteur"

    def __init__(self, registry) -> None:
        self.oracle = OraclePolicy(registry)

    def act(self, trajectories):
        return [scripted_reply("kill 1; sleep 2") if t.task_id == "example-bad-permission" and not t.turns
                else reply for t, reply in zip(trajectories, self.oracle.act(trajectories))]


def test_an_episode_that_fails_is_recorded_with_its_error_and_the_rollout_goes_on(example_registry, docker_client,
                                                                                 tmp_path: Path):
    out = tmp_path / "saboteur.jsonl"
    stats = rollout(Saboteur(example_registry), EXAMPLE_IDS, out,
                    RolloutConfig(episodes=1, envs=2, progress=False), registry=example_registry)
    trajectories = {t.task_id: t for t in read_jsonl(out)}
    assert stats.episodes == 3 and set(trajectories) == set(EXAMPLE_IDS)
    failed = trajectories["example-bad-permission"]
    assert failed.reward == 0.0 and failed.end == "error" and failed.error["kind"] == "container-died"
    assert failed.error["policy_caused"] is True and not failed.infrastructure_failure
    assert all(trajectories[t].reward == 1.0 and trajectories[t].error is None and trajectories[t].tamper == []
               for t in EXAMPLE_IDS if t != "example-bad-permission")
    assert no_containers(docker_client)


def test_a_task_whose_image_cannot_be_built_is_skipped_not_fatal(example_registry, docker_client, tmp_path: Path):
    broken = example_registry.path / "example-unbuildable"
    shutil.copytree(example_registry.path / "example-bad-permission", broken)
    toml = broken / "task.toml"
    toml.write_text(toml.read_text().replace('"example-bad-permission"', '"example-unbuildable"'))
    (broken / "environment" / "Dockerfile").write_text("FROM cligym/no-such-base:image\n")
    out = tmp_path / "skip.jsonl"
    stats = rollout(NoopPolicy(), ["example-unbuildable"], out, RolloutConfig(episodes=2, envs=2, progress=False),
                    registry=example_registry)  # the env tests show reset going on with the other tasks
    assert list(stats.unbuildable) == ["example-unbuildable"]
    assert "cligym/no-such-base" in stats.unbuildable["example-unbuildable"]
    assert stats.episodes == 0 and read_jsonl(out) == []
