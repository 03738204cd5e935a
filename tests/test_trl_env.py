"""TRL's GRPOTrainer over real CLI-Gym containers: the environment_factory adapter, then two GRPO steps on CPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agents.trl_env import CLIGymToolEnv, close_all, dataset
from tests.conftest import own_containers

for extra in ("datasets", "transformers", "trl"):  # the `train` extra
    pytest.importorskip(extra)
pytestmark = pytest.mark.timeout(600)
TASK = "example-bad-permission"


def test_tool_env_runs_commands_and_grades_with_the_real_grader(example_registry, docker_client):
    env = CLIGymToolEnv(example_registry, task_ids=[TASK], max_steps=5)
    try:
        issue = env.reset(task_id=TASK, prompt=[{"role": "user", "content": ""}])  # TRL passes the whole row
        assert issue == example_registry.get(TASK).instruction and env.task_id == TASK
        assert env.bash("echo hi; (exit 3)").startswith("exit code 3\nhi")
        assert env.bash(example_registry.get(TASK).solution).startswith("exit code 0")
        assert env.submit().startswith("Submitted") and env.get_reward() == 1.0 and env.info["resolved"] is True
        assert set(env.info["tests"]) == set(example_registry.get(TASK).tests.selected) and env.rewards == [1.0]
        assert env.bash("ls") == "The episode is over: nothing ran." and not own_containers(docker_client)
        env.reset()  # the same instance again, a random task: left open, closed by close_all
        assert len(own_containers(docker_client)) == 1
    finally:
        close_all()
    assert not own_containers(docker_client)
    with pytest.raises(RuntimeError, match="before reset"):
        CLIGymToolEnv(example_registry).get_reward()


def test_two_grpo_steps_on_the_tiny_model_over_real_containers(tiny_model: Path, example_registry, docker_client,
                                                               tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    made: list[CLIGymToolEnv] = []

    def factory() -> CLIGymToolEnv:
        made.append(CLIGymToolEnv(example_registry, task_ids=[TASK], max_steps=3))
        return made[-1]

    tokenizer = AutoTokenizer.from_pretrained(tiny_model, padding_side="left")
    config = GRPOConfig(output_dir=str(tmp_path / "grpo"), max_steps=2, per_device_train_batch_size=2,
                        num_generations=2, max_completion_length=12, max_tool_calling_iterations=2,
                        learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                        seed=0)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model), args=config,
                          train_dataset=dataset([TASK], repeats=4), processing_class=tokenizer,
                          environment_factory=factory)
    assert sorted(tool.__name__ for tool in trainer.tools) == ["bash", "submit"]
    try:
        result = trainer.train()
    finally:
        close_all()
    assert result.global_step == 2
    rewards = [reward for env in made for reward in env.rewards]
    assert len(rewards) == 4  # 2 steps x 2 generations, each graded by the real grader
    selected = set(example_registry.get(TASK).tests.selected)
    assert all(set(env.info["tests"]) == selected and env.info["error"] is None for env in made)
    logged = [log["rewards/CLIGymToolEnv/mean"] for log in trainer.state.log_history
              if "rewards/CLIGymToolEnv/mean" in log]
    assert len(logged) == 2 and math.isclose(sum(logged) / 2, sum(rewards) / 4)
    assert not own_containers(docker_client)
