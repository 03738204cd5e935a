"""Terminal-Bench 1.0 task folders and the paper's dataset rows in: a realistic task through `CLIGym-v0` (oracle 1,
no-op 0, graded by its run-tests.sh and Terminal-Bench's pytest rule), the parser on real pytest output, and one
clear error per malformed input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import cligym_env  # noqa: F401  (registers CLIGym-v0)
from agents.baselines import NoopPolicy, OraclePolicy
from agents.rollout import run_episode
from cligym_env.cli import app
from cligym_env.error import TaskFormatError
from cligym_env.formats import terminal_bench
from cligym_env.formats.importer import import_tasks, read_tasks
from cligym_env.grading.external import parse_pytest_summary
from cligym_env.images.build import image_exists
from cligym_env.tasks import Registry

TB_TASK = {
    "task.yaml": textwrap.dedent("""\
        instruction: |-
          The `summarize` script in /app crashes on our sales export:

              $ python3 /app/summarize.py /app/data/sales.csv
              ValueError: could not convert string to float: '12,50'

          Fix the data file so the script prints the total again; do not change the script.
        author_name: Ada Example
        author_email: ada@example.com
        difficulty: easy
        category: file-system
        tags:
          - data
          - python
        parser_name: pytest
        max_agent_timeout_sec: 360.0
        max_test_timeout_sec: 60.0
        run_tests_in_same_shell: false
        expert_time_estimate_min: 5
        junior_time_estimate_min: 20
        """),
    "Dockerfile": textwrap.dedent("""\
        FROM python:3.11-slim-bookworm
        WORKDIR /app
        COPY summarize.py /app/summarize.py
        COPY sales.csv /app/data/sales.csv
        RUN sed -i 's/^widget,12.50$/widget,12,50/' /app/data/sales.csv
        """),
    "docker-compose.yaml": textwrap.dedent("""\
        services:
          client:
            build:
              dockerfile: Dockerfile
            image: ${T_BENCH_TASK_DOCKER_CLIENT_IMAGE_NAME}
            container_name: ${T_BENCH_TASK_DOCKER_CLIENT_CONTAINER_NAME}
            command: [ "sh", "-c", "sleep infinity" ]
            environment:
              - TEST_DIR=${T_BENCH_TEST_DIR}
            volumes:
              - ${T_BENCH_TASK_LOGS_PATH}:${T_BENCH_CONTAINER_LOGS_PATH}
              - ${T_BENCH_TASK_AGENT_LOGS_PATH}:${T_BENCH_CONTAINER_AGENT_LOGS_PATH}
        """),
    "summarize.py": textwrap.dedent("""\
        import csv, sys
        with open(sys.argv[1]) as handle:
            rows = list(csv.reader(handle))[1:]
        print(f"total: {sum(float(row[1]) for row in rows):.2f}")
        """),
    "sales.csv": "item,price\ngadget,7.25\nwidget,12.50\n",
    "run-tests.sh": textwrap.dedent("""\
        #!/bin/bash
        # Terminal-Bench runs this from the container's working directory with TEST_DIR set.
        if [ "$PWD" = "/" ]; then
            echo "Error: No working directory set. Please set a WORKDIR in your Dockerfile."
            exit 1
        fi
        python3 -m pytest "$TEST_DIR/test_outputs.py" -rA -p no:cacheprovider
        """),
    "tests/test_outputs.py": textwrap.dedent("""\
        import subprocess
        from pathlib import Path

        def test_script_unchanged():
            assert "float(row[1])" in Path("/app/summarize.py").read_text()

        def test_total_printed():
            run = subprocess.run(["python3", "/app/summarize.py", "/app/data/sales.csv"],
                                 capture_output=True, text=True)
            assert run.returncode == 0, run.stderr
            assert run.stdout.strip() == "total: 19.75"
        """),
    "solution.sh": "#!/bin/bash\nset -e\nsed -i 's/^widget,12,50$/widget,12.50/' /app/data/sales.csv\n",
}


def write_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_terminal_bench_task_runs_through_cligym_v0(docker_client, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "tb-tasks" / "fix-sales-csv", TB_TASK)
    registry = Registry(tmp_path / "registry")
    (task,) = import_tasks(folder.parent, registry, exists=lambda image: image_exists(docker_client, image))
    assert task.id == "fix-sales-csv" and task.tests.runner == "terminal-bench"
    assert task.instruction.startswith("The `summarize` script") and task.metadata.category == "file-system"
    assert task.environment.dockerfile.startswith("FROM cligym/python:bookworm")  # no registry: the stand-in
    assert set(task.tests.files) == {"run-tests.sh", "test_outputs.py"}
    assert "sales.csv" in task.environment.files and "solution.sh" not in task.environment.files
    env = gym.make("CLIGym-v0", registry=registry.path, max_steps=5, command_timeout=60)
    try:
        oracle = run_episode(env, OraclePolicy(registry), task_id=task.id)
        assert oracle.reward == 1.0 and oracle.tests == {"terminal-bench::resolved": "passed"}, oracle
        noop = run_episode(env, NoopPolicy(), task_id=task.id)
        assert noop.reward == 0.0 and noop.tests == {"terminal-bench::resolved": "failed"}
        parsed = env.unwrapped.last_grade.run.outcomes  # the per-test results Terminal-Bench's parser reads
        assert parsed["test_total_printed"] == "failed" and parsed["test_script_unchanged"] == "passed"
    finally:
        env.close()


def test_parser_follows_terminal_bench_on_real_pytest_output(tmp_path: Path) -> None:
    (tmp_path / "test_outputs.py").write_text(textwrap.dedent("""\
        import pytest

        def test_ok(): pass
        def test_bad(): assert 1 == 2, "numbers - differ"
        @pytest.mark.skip(reason="not here")
        def test_skipped(): pass
        @pytest.mark.xfail
        def test_expected_failure(): assert False
        @pytest.mark.parametrize("n", [1, 2])
        def test_param(n): assert n == 1
        """))
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    for ci in ({}, {"CI": "true"}):  # with CI set pytest prints whole messages ("numbers - differ" too)
        run = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                             capture_output=True, text=True, timeout=120, env={**environment, **ci})
        parsed = parse_pytest_summary(run.stdout)
        expected = {"test_ok": "passed", "test_bad": "failed", "test_param[1]": "passed", "test_param[2]": "failed",
                    "test_expected_failure": "passed"}  # XFAIL counts as passed, as in Terminal-Bench
        assert {name: parsed.get(name) for name in expected} == expected, (ci, parsed)
        assert parse_pytest_summary(run.stdout.split("short test summary info")[0]) == {}  # no summary: nothing


def test_solution_yaml_and_missing_solution(tmp_path: Path) -> None:
    files = {k: v for k, v in TB_TASK.items() if k != "solution.sh"}
    folder = write_folder(tmp_path / "with-yaml", files | {"solution.yaml": textwrap.dedent("""\
        - command: "cd /app/data"
          min_timeout_sec: 0.1
          block: false
          append_enter: true
        - command: "sed -i 's/^widget,12,50$/widget,12.50/' sales.csv"
          block: true
        """)})
    task = terminal_bench.read_task(folder, exists=lambda image: True)
    assert task.solution.splitlines()[1:] == ["cd /app/data", "sed -i 's/^widget,12,50$/widget,12.50/' sales.csv"]
    older = files | {"task.yaml": "descriptions:\n  - key: base\n    description: |\n      Fix the CSV.\n"}
    assert (terminal_bench.read_task(write_folder(tmp_path / "older", older), exists=bool).instruction
            == "Fix the CSV.\n")
    bare = terminal_bench.read_task(write_folder(tmp_path / "bare", files), exists=lambda image: True)
    assert bare.solution == "" and bare.metadata.extra["no_oracle"] is True  # imported, flagged like the paper's


@pytest.mark.parametrize("name, text, message", [
    ("task.yaml", "instruction: |\nThe script crashes.\n  more text\ndifficulty: easy\n",
     r"task.yaml: invalid YAML at line \d+, column \d+: .*`instruction: \|`"),
    ("task.yaml", "difficulty: easy\n", r"task.yaml: field `instruction` must be non-empty text \(found missing\)"),
    ("task.yaml", "instruction: [1, 2]\n", r"task.yaml: field `instruction` must be non-empty text"),
    ("task.yaml", TB_TASK["task.yaml"] + "max_test_timeout_sec: soon\n", r"field `max_test_timeout_sec`"),
    ("docker-compose.yaml", TB_TASK["docker-compose.yaml"] + "  db:\n    image: postgres:16\n",
     r"docker-compose.yaml: field `services` has 2 services \(client, db\)"),
    ("solution.yaml", "command: ls\n", r"solution.yaml: expected a list of steps each with a `command`"),
    ("Dockerfile", None, r"Dockerfile: required file is missing"),
    ("run-tests.sh", None, r"run-tests.sh: required file is missing"),
])
def test_malformed_folders_name_file_and_field(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    folder = write_folder(tmp_path / "task", {k: v for k, v in TB_TASK.items() if k != "solution.sh"})
    if text is None:
        (folder / name).unlink()
    else:
        (folder / name).write_text(text)
    with pytest.raises(TaskFormatError, match=message):
        terminal_bench.read_task(folder, exists=lambda image: True)


def dataset_rows() -> list[dict[str, str]]:
    dockerfile = TB_TASK["Dockerfile"].replace("COPY summarize.py /app/summarize.py\n"
                                               "COPY sales.csv /app/data/sales.csv\n",
                                               "RUN mkdir -p /app/data && echo 'item,price' > /app/data/sales.csv\n")
    yaml_row = {"task_id": "Sales_CSV.1", "task_yaml": TB_TASK["task.yaml"], "dockerfile": dockerfile,
                "docker_compose": TB_TASK["docker-compose.yaml"], "run_tests": TB_TASK["run-tests.sh"]}
    plain_row = {"task_id": "sales-csv-2", "instruction": "Fix /app/data/sales.csv.", "dockerfile": dockerfile,
                 "run_tests": TB_TASK["run-tests.sh"], "category": "File System"}
    return [yaml_row, plain_row]


def test_dataset_rows_from_parquet_and_jsonl(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as parquet

    rows = dataset_rows()
    columns = sorted({column for row in rows for column in row})
    table = pa.Table.from_pylist(rows, schema=pa.schema([(column, pa.string()) for column in columns]))
    parquet.write_table(table, tmp_path / "cli-gym.parquet")
    (tmp_path / "cli-gym.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    for name in ("cli-gym.parquet", "cli-gym.jsonl"):
        tasks = read_tasks(tmp_path / name, exists=lambda image: False)
        assert [task.id for task in tasks] == ["sales_csv.1", "sales-csv-2"]
        assert all(task.tests.runner == "terminal-bench" and task.metadata.extra["no_oracle"] for task in tasks)
        assert tasks[0].instruction.startswith("The `summarize` script") and tasks[0].tests.timeout == 60.0
        assert tasks[1].metadata.category == "file-system"  # the paper's "File System"
        assert tasks[0].environment.dockerfile.startswith("FROM cligym/python:bookworm")
        assert tasks[0].tests.files == {"run-tests.sh": TB_TASK["run-tests.sh"].encode()}


def test_cli_import_and_one_line_errors(tmp_path: Path) -> None:
    rows = dataset_rows()
    (tmp_path / "rows.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "run_tests": ""}) + "\n")
    registry = tmp_path / "registry"
    result = CliRunner().invoke(app, ["tasks", "import", str(tmp_path / "rows.jsonl"), "--registry", str(registry)])
    assert result.exit_code == 2
    assert "rows.jsonl:2: column `run_tests` is missing or empty" in result.output
    assert not Registry(registry).ids()  # nothing half-imported
    (tmp_path / "rows.jsonl").write_text(json.dumps(rows[0]) + "\n")
    result = CliRunner().invoke(app, ["tasks", "import", str(tmp_path / "rows.jsonl"), "--registry", str(registry)])
    assert result.exit_code == 0, result.output
    assert Registry(registry).ids() == ["sales_csv.1"]
    assert Registry(registry).get("sales_csv.1").metadata.generator == "cligym-dataset-import-no-oracle"
