"""The SkyRL-Gym adapter against a real container: made by name, fenced replies, the grader's reward, closed."""

from __future__ import annotations

import pytest

from tests.conftest import own_containers

skyrl_gym = pytest.importorskip("skyrl_gym")  # the `skyrl` extra
pytestmark = pytest.mark.timeout(300)
TASK = "example-bad-permission"


def test_cligym_text_env_plays_an_episode_to_the_graders_reward(example_registry, docker_client):
    import agents.skyrl_env  # noqa: F401  (registers "cligym")

    env = skyrl_gym.make("cligym", env_config={"registry": example_registry}, extras={"task_id": TASK,
                                                                                     "max_turns": 4})
    try:
        messages, info = env.init([])
        assert info == {"task_id": TASK} and [m["role"] for m in messages] == ["system", "user"]
        assert messages[1]["content"] == example_registry.get(TASK).instruction
        assert len(own_containers(docker_client)) == 1

        garbage = env.step("I think the file is broken.")  # no block: feedback, nothing runs
        assert (garbage["done"], garbage["reward"]) == (False, 0.0)
        assert garbage["observations"][0]["content"].startswith("Nothing ran: your reply had no ```bash block")
        ran = env.step(f"```bash\n{example_registry.get(TASK).solution.strip()}\n```")
        assert not ran["done"] and ran["observations"][0]["content"].startswith("exit code 0")
        graded = env.step("submit")
        assert (graded["done"], graded["reward"], graded["metadata"]["resolved"]) == (True, 1.0, True)
        assert set(graded["metadata"]["tests"]) == set(example_registry.get(TASK).tests.selected)
        assert env.get_metrics() == {"turns": 3, "resolved": 1.0} and not own_containers(docker_client)
    finally:
        env.close()
        env.close()  # idempotent
    assert not own_containers(docker_client)
