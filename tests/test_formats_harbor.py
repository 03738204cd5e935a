"""Harbor's task layout both ways, against the real Docker engine: exported examples pass a runner with Harbor's
semantics with their oracle and fail with a no-op (forged rewards included); exported then imported, and a
hand-written Harbor task, run through `CLIGym-v0` with the same rewards."""

from __future__ import annotations

import shutil
import textwrap
import tomllib
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import cligym_env  # noqa: F401  (registers CLIGym-v0)
from agents.baselines import NoopPolicy, OraclePolicy
from agents.rollout import run_episode
from cligym_env.cli import app
from cligym_env.error import TaskFormatError, UnmappableImageError
from cligym_env.formats import harbor
from cligym_env.formats.importer import import_tasks
from cligym_env.images.build import image_exists
from cligym_env.tasks import Registry
from tests.harbor_runner import run_trial

EXAMPLE_IDS = ["example-bad-permission", "example-corrupted-config", "example-missing-module"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped examples exported with the CLI (with its own CLIGYM_HOME, where the runner's wheels are cached)."""
    out = tmp_path_factory.mktemp("harbor")
    home = tmp_path_factory.mktemp("home")
    Registry(home / "tasks").install_examples()
    result = CliRunner().invoke(app, ["export", "--format", "harbor", str(out), "--registry", str(home / "tasks"),
                                      *[arg for task in EXAMPLE_IDS for arg in ("--id", task)]],
                                env={"CLIGYM_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == EXAMPLE_IDS
    return out


def test_export_layout(exported: Path) -> None:
    folder = exported / "example-missing-module"
    config = tomllib.loads((folder / "task.toml").read_text())
    assert config["environment"]["allow_internet"] is False
    assert config["verifier"]["timeout_sec"] > 0 and config["agent"]["timeout_sec"] > 0
    assert config["metadata"]["category"] == "dependencies-runtime"
    dockerfile = (folder / "environment" / "Dockerfile").read_text()
    froms = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms == ["FROM debian:bookworm-slim"]  # cligym/python inlined: builds on any Docker host
    assert "apt-get install" in dockerfile and "pip uninstall -y unitconv" in dockerfile
    assert not any("test_inventory" in p.name for p in (folder / "environment").rglob("*"))  # tests stay hidden
    assert (folder / "tests" / "cases" / "test_inventory.py").is_file()
    assert {"pytest_runner.py", "lib.zip", "verdict.py", "junit.py"} <= {p.name for p in
                                                                        (folder / "tests" / "cligym").iterdir()}
    assert (folder / "solution" / "solve.sh").read_text().strip().endswith("unitconv")
    assert (folder / "tests" / "test.sh").stat().st_mode & 0o111


@pytest.mark.parametrize("task_id", EXAMPLE_IDS)
def test_exported_examples_pass_harbor_semantics(exported: Path, docker_client, task_id: str) -> None:
    assert run_trial(docker_client, exported / task_id, oracle=True) == 1.0
    assert run_trial(docker_client, exported / task_id, oracle=False) == 0.0


def test_forged_rewards_do_not_count(exported: Path, docker_client) -> None:
    """A planted reward file and a process left writing one (Harbor's known weakness) both earn 0."""
    def forge(container) -> None:  # type: ignore[no-untyped-def]
        container.exec_run(["bash", "-c", "echo 1 > /logs/verifier/reward.txt; echo '{\"reward\": 1}' > "
                            "/logs/verifier/reward.json; nohup setsid bash -c 'while :; do echo 1 > "
                            "/logs/verifier/reward.txt; echo {\\\"reward\\\":1} > /logs/verifier/reward.json; "
                            "sleep 0.05; done' >/dev/null 2>&1 &"], detach=False)
    # under docker-init (compose's `init: true`) the container's own command is spared, the forger is not
    assert run_trial(docker_client, exported / "example-bad-permission", oracle=False, agent=forge, init=True) == 0.0


def test_round_trip_through_cligym_v0(exported: Path, docker_client, tmp_path: Path) -> None:
    """Exported, then imported: graded by the exported test.sh under cligym's grader, same rewards (one example
    here: every grade costs a snapshot and a fresh container; all three pass the Harbor runner above)."""
    registry = Registry(tmp_path / "registry")
    tasks = import_tasks(exported, registry, exists=lambda image: image_exists(docker_client, image))
    assert sorted(task.id for task in tasks) == EXAMPLE_IDS
    assert all(task.tests.runner == "harbor" and task.solution for task in tasks)
    env = gym.make("CLIGym-v0", registry=registry.path, max_steps=5, command_timeout=60)
    try:
        oracle = run_episode(env, OraclePolicy(registry), task_id="example-bad-permission")
        assert oracle.reward == 1.0 and oracle.resolved, oracle
        assert oracle.tests == {"harbor::reward": "passed"}
        noop = run_episode(env, NoopPolicy(), task_id="example-bad-permission")
        assert noop.reward == 0.0 and not noop.resolved and noop.tests == {"harbor::reward": "failed"}
    finally:
        env.close()


HARBOR_TASK = {
    "instruction.md": "The nightly `report` job crashes: `/srv/report/report.py` cannot read its config.\n",
    "task.toml": textwrap.dedent("""\
        version = "1.0"

        [metadata]
        author_name = "Ada Example"
        author_email = "ada@example.com"
        difficulty = "easy"
        category = "system-administration"
        tags = ["config", "python"]

        [verifier]
        timeout_sec = 120.0

        [agent]
        timeout_sec = 600.0

        [environment]
        build_timeout_sec = 600.0
        cpus = 1
        memory_mb = 2048
        storage_mb = 10240
        allow_internet = false
        """),
    "environment/Dockerfile": textwrap.dedent("""\
        FROM python:3.11-slim-bookworm
        WORKDIR /srv/report
        COPY report.py /srv/report/report.py
        RUN printf '[report]\\nrows = 3\\n' > /srv/report/report.ini && chmod 000 /srv/report/report.ini \\
         && useradd -m reporter
        """),
    "environment/report.py": textwrap.dedent("""\
        import configparser, sys
        parser = configparser.ConfigParser()
        if not parser.read("/srv/report/report.ini"):
            sys.exit("cannot read /srv/report/report.ini")
        print("rows:", parser.getint("report", "rows"))
        """),
    "solution/solve.sh": "#!/bin/bash\nset -e\nchmod 644 /srv/report/report.ini\n",
    "tests/test.sh": textwrap.dedent("""\
        #!/bin/bash
        mkdir -p /logs/verifier
        if python3 -m pytest /tests/test_outputs.py -rA -p no:cacheprovider; then
          echo 1 > /logs/verifier/reward.txt
        else
          echo 0 > /logs/verifier/reward.txt
        fi
        """),
    "tests/test_outputs.py": textwrap.dedent("""\
        import subprocess

        def test_report_runs_as_unprivileged_user():
            run = subprocess.run(["su", "reporter", "-c", "python3 /srv/report/report.py"],
                                 capture_output=True, text=True)
            assert run.returncode == 0, run.stderr
            assert run.stdout.strip() == "rows: 3"
        """),
}


def write_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_harbor_task_runs_through_cligym_v0(docker_client, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "fix-report-config", HARBOR_TASK)
    registry = Registry(tmp_path / "registry")
    exists = lambda image: image_exists(docker_client, image)  # noqa: E731
    (task,) = import_tasks(folder, registry, exists=exists)
    assert task.environment.dockerfile.startswith("FROM cligym/python:bookworm")  # mapped: no registry here
    assert task.metadata.category == "other" and task.metadata.extra["category"] == "system-administration"
    assert task.tests.timeout == 120.0 and not task.environment.network
    env = gym.make("CLIGym-v0", registry=registry.path, max_steps=5, command_timeout=60)
    try:
        assert run_episode(env, OraclePolicy(registry), task_id=task.id).reward == 1.0
        assert run_episode(env, NoopPolicy(), task_id=task.id).reward == 0.0
    finally:
        env.close()


def test_malformed_harbor_folders_name_file_and_field(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "bad", HARBOR_TASK)
    exists = lambda image: image == "python:3.11-slim-bookworm"  # noqa: E731
    (folder / "task.toml").write_text("[verifier\ntimeout_sec = 1\n")
    with pytest.raises(TaskFormatError, match=r"bad/task.toml: invalid TOML"):
        harbor.read_task(folder, exists=exists)
    (folder / "task.toml").write_text('[environment]\nallow_internet = "no"\n')
    with pytest.raises(TaskFormatError, match=r"task.toml: field `environment.allow_internet`"):
        harbor.read_task(folder, exists=exists)
    (folder / "task.toml").write_text(HARBOR_TASK["task.toml"])
    (folder / "tests" / "test.sh").unlink()
    with pytest.raises(TaskFormatError, match=r"tests/test.sh: required file is missing"):
        harbor.read_task(folder, exists=exists)
    shutil.rmtree(folder / "tests")
    write_folder(folder, {k: v for k, v in HARBOR_TASK.items() if k.startswith("tests/")})
    (folder / "environment" / "Dockerfile").write_text("FROM ghcr.io/example/private-base:1\n")
    with pytest.raises(UnmappableImageError,
                       match=r"FROM ghcr.io/example/private-base:1: .*`docker pull ghcr.io/example/private-base:1`"):
        harbor.read_task(folder, exists=exists)
    (folder / "solution" / "solve.sh").unlink()
    (folder / "environment" / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\n")
    task = harbor.read_task(folder, exists=exists)  # no solution: imported, flagged
    assert task.solution == "" and task.metadata.extra["no_oracle"] and task.metadata.generator.endswith("no-oracle")


def test_task_from_a_gold_image_exports_self_contained(gold, docker_client, cligym_home: Path, tmp_path: Path) -> None:
    """A minted task builds FROM its gold image: its saved recipe and cligym/python are inlined, contexts kept apart."""
    from dataclasses import replace

    from cligym_env.generator.gold import save_gold
    from cligym_env.tasks import Environment, Metadata, Task

    save_gold(gold, cligym_home / "gold" / "inventory-1.0")
    example = Registry(tmp_path / "examples")
    example.install_examples()
    base = example.get("example-missing-module")
    task = Task("inventory-uninstall-unitconv", base.instruction,
                Environment(f"FROM {gold.image}\nRUN pip uninstall -y unitconv\n"),
                replace(base.tests), base.solution, Metadata(project="inventory", generator="rules:uninstall"))
    folder = harbor.export_task(task, tmp_path / "out")
    dockerfile = (folder / "environment" / "Dockerfile").read_text()
    assert [line for line in dockerfile.splitlines() if line.startswith("FROM ")] == ["FROM debian:bookworm-slim"]
    assert "COPY cligym-base/1/unitconv /opt/src/unitconv" in dockerfile  # the gold recipe's context, moved
    assert (folder / "environment" / "cligym-base" / "1" / "unitconv" / "pyproject.toml").is_file()
    assert run_trial(docker_client, folder, oracle=True) == 1.0  # it builds anywhere (no-op 0: as the examples)


def test_verdict_runners_keep_task_validation_meaningful(tmp_path: Path) -> None:
    """A harbor / terminal-bench task selects exactly its verdict id and needs a command; it round-trips on disk."""
    from dataclasses import replace

    from cligym_env.error import TaskError
    from cligym_env.tasks import load_task

    folder = write_folder(tmp_path / "fix-report-config", HARBOR_TASK)
    task = harbor.read_task(folder, exists=lambda image: True)
    assert task.tests.selected == ("harbor::reward",)
    registry = Registry(tmp_path / "registry")
    assert load_task(registry.add(task)) == task  # the folder keeps runner, command, files and verdict
    for tests, message in ((replace(task.tests, fail_to_pass=("test_outputs.py::test_x",)), "judges the whole run"),
                           (replace(task.tests, pass_to_pass=("harbor::reward",)), "judges the whole run"),
                           (replace(task.tests, command=""), "tests.command is empty")):
        with pytest.raises(TaskError, match=message):
            replace(task, tests=tests)


def test_bootstrap_tags_the_base_under_its_public_names(docker_client) -> None:
    from cligym_env.images.bootstrap import BASE_IMAGE, PUBLIC_BASE_NAMES

    base = docker_client.images.get(BASE_IMAGE).id
    assert all(docker_client.images.get(name).id == base for name in PUBLIC_BASE_NAMES)
