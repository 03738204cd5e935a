"""The oracle over a local Ray cluster: worker actors drive their own env pools; the driver writes and resumes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from agents.policies import PolicySpec
from agents.trajectory import read_jsonl
from cligym_env.runtime.sandbox import LABEL

ray = pytest.importorskip("ray")
EXAMPLE_IDS = ["example-bad-permission", "example-corrupted-config", "example-missing-module"]


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.timeout(600)
def test_ray_rollout_of_the_oracle(local_ray, example_registry, docker_client, tmp_path: Path):
    from agents.ray_rollout import ray_rollout
    from agents.rollout import RolloutConfig

    out = tmp_path / "ray.jsonl"
    stats = ray_rollout(PolicySpec("oracle"), EXAMPLE_IDS, out,
                        RolloutConfig(episodes=2, envs=2, progress=False), registry=example_registry, workers=2)

    assert stats.episodes == 6 and stats.rewards == [1.0] * 6 and stats.rounds > 0
    trajectories = read_jsonl(out)
    assert sorted((t.task_id, t.episode) for t in trajectories) == sorted(
        (task_id, index) for task_id in EXAMPLE_IDS for index in (0, 1))
    assert all(t.reward == 1.0 and t.resolved and t.end == "submitted" for t in trajectories)
    workers = {(t.extra["worker"]["host"], t.extra["worker"]["pid"]) for t in trajectories}
    assert len(workers) == 2 and all(pid != os.getpid() for _, pid in workers)  # both actors worked, not us
    assert {t.extra["worker"]["docker_host"] for t in trajectories} == {
        os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")}

    again = ray_rollout(PolicySpec("oracle"), EXAMPLE_IDS, out,
                        RolloutConfig(episodes=2, progress=False), registry=example_registry)
    assert (again.episodes, again.skipped) == (0, 6) and len(read_jsonl(out)) == 6

    for host, pid in workers:  # the actors closed their envs: none of their containers is left
        assert host == socket.gethostname()
        assert not docker_client.containers.list(all=True, filters={"label": [LABEL, f"cligym.owner={host}:{pid}"]})
