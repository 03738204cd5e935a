"""`CLIGym-v0` through the Gymnasium API on the shipped example tasks, against the real Docker engine."""

from __future__ import annotations

import shutil

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import cligym_env  # noqa: F401  (registers CLIGym-v0)
from agents.baselines import NoopPolicy, OraclePolicy
from agents.rollout import run_episode
from cligym_env.env import CLIGymEnv
from cligym_env.error import ImageBuildError

EXAMPLE_IDS = ["example-bad-permission", "example-corrupted-config", "example-missing-module"]


@pytest.fixture
def env(example_registry, docker_client):
    environment = gym.make("CLIGym-v0", registry=example_registry.path, max_steps=5, command_timeout=10)
    yield environment
    environment.close()


def test_registered_under_both_names(example_registry, docker_client):
    for name in ("CLIGym-v0", "cligym_env:CLIGym-v0"):
        environment = gym.make(name, registry=example_registry.path)
        assert isinstance(environment.unwrapped, CLIGymEnv)
        environment.close()


def test_passes_gymnasium_env_checker(example_registry, docker_client):
    environment = gym.make("CLIGym-v0", registry=example_registry.path, task_ids=["example-bad-permission"],
                           max_steps=3, command_timeout=5)
    check_env(environment.unwrapped, skip_render_check=True)
    environment.close()


@pytest.mark.parametrize("task_id", EXAMPLE_IDS)
def test_oracle_solves_and_noop_fails_every_example(env, example_registry, task_id):
    oracle = run_episode(env, OraclePolicy(example_registry), task_id=task_id)
    assert oracle.reward == 1.0 and oracle.resolved, oracle
    assert set(oracle.tests.values()) == {"passed"}
    noop = run_episode(env, NoopPolicy(), task_id=task_id)
    assert noop.reward == 0.0 and not noop.resolved
    task = example_registry.get(task_id)
    assert all(noop.tests[test] != "passed" for test in task.tests.fail_to_pass)
    assert all(noop.tests[test] == "passed" for test in task.tests.pass_to_pass)


def test_episode_flow_and_info(env, docker_client):
    observation, info = env.reset(seed=3, options={"task_id": "example-missing-module"})
    assert "unitconv" in observation and info["task_id"] == "example-missing-module"
    assert info["category"] == "dependencies-runtime"
    name = env.unwrapped.container_name
    assert docker_client.containers.get(name).status == "running"
    assert env.unwrapped.sandbox.run("ls /cligym/tests 2>&1").exit_code != 0  # tests are hidden until grading
    observation, reward, terminated, truncated, info = env.step("cd /app && echo $((6 * 7))")
    assert observation == "42\n" and reward == 0.0 and not terminated and not truncated
    assert info == {"exit_code": 0, "timed_out": False, "output_truncated": False, "shell_restarted": False}
    assert type(truncated) is bool
    assert env.step("pwd")[0] == "/app\n"
    observation, reward, terminated, truncated, info = env.step("submit")
    assert terminated and not truncated and reward == 0.0
    assert info["tests"]["test_inventory.py::test_report"] == "failed"
    assert not docker_client.containers.list(all=True, filters={"name": name})
    with pytest.raises(RuntimeError, match="reset"):
        env.step("ls")


def test_step_limit_truncates_and_still_grades(example_registry, docker_client):
    """Gymnasium's own limit (`max_episode_steps`, via TimeLimit) grades too: it lowers the env's `max_steps`."""
    environment = gym.make("CLIGym-v0", registry=example_registry.path, max_steps=5, max_episode_steps=2,
                           task_ids=["example-bad-permission"])
    assert environment.spec.nondeterministic and environment.spec.max_episode_steps == 2
    environment.reset(seed=0)
    name = environment.unwrapped.container_name
    assert environment.step("chmod +x /app/bin/inventory-report")[3] is False
    observation, reward, terminated, truncated, info = environment.step("echo done")
    assert truncated and not terminated and reward == 1.0 and info["resolved"] and info["error"] is None
    assert not docker_client.containers.list(all=True, filters={"name": name})  # graded and removed
    environment.close()


def test_reset_skips_a_task_whose_image_cannot_be_built(example_registry, docker_client):
    broken = example_registry.path / "example-unbuildable"
    shutil.copytree(example_registry.path / "example-bad-permission", broken)
    toml = broken / "task.toml"
    toml.write_text(toml.read_text().replace('"example-bad-permission"', '"example-unbuildable"'))
    dockerfile = broken / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\nRUN echo cligym-broken-build && exit 3\n")
    environment = gym.make("CLIGym-v0", registry=example_registry.path,
                           task_ids=["example-unbuildable", "example-bad-permission"], max_steps=2)
    try:
        chosen = [environment.reset(seed=seed) for seed in range(4)]
        assert {info["task_id"] for _, info in chosen} == {"example-bad-permission"}
        skipped = chosen[-1][1]["skipped"]
        assert list(skipped) == ["example-unbuildable"] and "exit 3" in skipped["example-unbuildable"]
        with pytest.raises(ImageBuildError, match="example-unbuildable"):  # asked for by name: said, not skipped
            environment.reset(options={"task_id": "example-unbuildable"})
    finally:
        environment.close()


def test_partial_credit(example_registry, docker_client):
    environment = gym.make("CLIGym-v0", registry=example_registry.path, partial_credit=True,
                           task_ids=["example-corrupted-config"])
    environment.reset(seed=0)
    *_, reward = environment.step("submit")[:2]
    assert reward == pytest.approx(2 / 5)  # the two pass-to-pass tests of five
    environment.close()


def test_hostile_commands_leave_the_env_usable(env):
    env.reset(seed=0, options={"task_id": "example-bad-permission"})
    env.unwrapped.command_timeout = 2
    for command in ["sleep 1000", "exit", "yes | head -c 100000000", "head -c 1000000 /dev/urandom", "cat"]:
        observation, _, terminated, _, info = env.step(command)
        assert env.observation_space.contains(observation), command
        assert not terminated
        env.unwrapped.steps = 0  # stay below the step limit for this test
    assert env.step("echo ok")[0] == "ok\n"


def test_seeded_task_choice_and_filters(example_registry, docker_client):
    environment = gym.make("CLIGym-v0", registry=example_registry.path, category="file-system")
    assert environment.unwrapped.task_ids == ["example-bad-permission"]
    environment.close()
    environment = gym.make("CLIGym-v0", registry=example_registry.path)
    first = [environment.reset(seed=seed)[1]["task_id"] for seed in range(6)]
    again = [environment.reset(seed=seed)[1]["task_id"] for seed in range(6)]
    assert first == again and len(set(first)) > 1
    environment.close()


def test_bad_input_gets_clear_errors(example_registry, docker_client):
    with pytest.raises(KeyError, match="example-bad-permision.*example-bad-permission"):
        gym.make("CLIGym-v0", registry=example_registry.path, task_ids=["example-bad-permision"])
    with pytest.raises(ValueError, match="no task"):  # a ConfigError: a UsageError and a ValueError
        gym.make("CLIGym-v0", registry=example_registry.path, category="concurrency")
    environment = gym.make("CLIGym-v0", registry=example_registry.path)
    environment.reset(seed=0)
    with pytest.raises(TypeError, match="shell command"):
        environment.unwrapped.step(42)
    environment.close()
    environment.close()  # idempotent


def test_async_vector_env(example_registry, docker_client):
    path = str(example_registry.path)
    envs = gym.vector.AsyncVectorEnv(
        [lambda: gym.make("cligym_env:CLIGym-v0", registry=path, task_ids=["example-bad-permission"])] * 2,
        shared_memory=False, context="spawn", autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    try:
        observations, infos = envs.reset(seed=[1, 2])
        assert all("Permission denied" in text for text in observations)
        observations, rewards, terminated, truncated, infos = envs.step(["echo a",
                                                                         "chmod +x /app/bin/inventory-report"])
        assert list(observations) == ["a\n", ""]
        observations, rewards, terminated, truncated, infos = envs.step(["submit", "submit"])
        assert list(rewards) == [0.0, 1.0] and all(terminated)
    finally:
        envs.close()


def test_a_container_killed_from_outside_ends_the_episode_cleanly(env, docker_client):
    env.reset(seed=0, options={"task_id": "example-bad-permission"})
    docker_client.containers.get(env.unwrapped.container_name).kill()
    observation, reward, terminated, truncated, info = env.step("ls")
    assert truncated and not terminated and reward == 0.0 and "episode is over" in observation
    assert info["error"]["kind"] == "container-died" and info["error"]["policy_caused"] is False
    env.reset(seed=0)  # the next episode works
    assert env.step("echo ok")[0] == "ok\n"
