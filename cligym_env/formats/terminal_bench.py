"""Terminal-Bench 1.0 task folders (also the layout of the CLI-Gym paper's released tasks) as `Task`s.

    <task>/task.yaml, Dockerfile, docker-compose.yaml, run-tests.sh, solution.sh | solution.yaml, tests/

As Terminal-Bench's harness does, after the agent ends `run-tests.sh` and `tests/` are copied to `/tests`
(`$TEST_DIR`), `bash /tests/run-tests.sh` runs in the image's working directory, and its pytest `-rA` output
decides: resolved iff every parsed test passed and at least one was parsed (`grading/external.py`).
The Dockerfile's build context is the task folder, less what must stay hidden (tests, solution, run-tests.sh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cligym_env.files import read_tree
from cligym_env.formats import common
from cligym_env.tasks.task import VERDICTS, Task, Tests
from cligym_env.error import TaskFormatError

TEST_DIR = "/tests"  # Terminal-Bench's DockerComposeManager.CONTAINER_TEST_DIR
TEST_COMMAND = f"bash {TEST_DIR}/run-tests.sh"
DEFAULT_TEST_TIMEOUT = 60.0  # task.yaml max_test_timeout_sec default
_HIDDEN = {"task.yaml", "run-tests.sh", "solution.sh", "solution.yaml", "docker-compose.yaml", "docker-compose.yml"}


def is_task(folder: Path) -> bool:
    return (folder / "task.yaml").is_file()


def read_task(folder: Path, *, exists: common.ImageCheck) -> Task:
    folder = Path(folder)
    where = folder / "task.yaml"
    fields = common.load_yaml(common.read_text(where, "the task's instruction and metadata"), str(where))
    text = common.instruction(common.yaml_instruction(fields), str(where))
    run_tests = common.read_text(folder / "run-tests.sh", "runs the tests, e.g. `pytest $TEST_DIR/test_outputs.py -rA`")
    dockerfile = common.read_text(folder / "Dockerfile", "builds the task's environment")
    _check_compose(folder)
    context = {name: data for name, data in read_tree(folder).items()
               if name not in _HIDDEN and name != "Dockerfile" and not name.startswith("tests/")}
    tests = {"run-tests.sh": run_tests.encode(),
             **{name: data for name, data in read_tree(folder / "tests").items() if name != "run-tests.sh"}}
    solution = _solution(folder)
    return Task(
        id=common.task_id(folder.name, str(folder)),
        instruction=text,
        environment=common.environment(dockerfile, context, network=True, exists=exists,
                                       where=str(folder / "Dockerfile")),
        tests=terminal_bench_tests(tests, _seconds(fields, "max_test_timeout_sec", where)),
        solution=solution or "",
        metadata=common.metadata(fields, source="terminal-bench", oracle=solution is not None, where=str(folder)),
    )


def terminal_bench_tests(files: dict[str, bytes], timeout: float) -> Tests:
    return Tests(runner="terminal-bench", command=TEST_COMMAND, files=files, directory=TEST_DIR, timeout=timeout,
                 fail_to_pass=(VERDICTS["terminal-bench"],))


def solution_from_yaml(text: str, where: str) -> str:
    """solution.yaml (a list of `command:` entries typed into the terminal) as one bash script."""
    try:
        steps = yaml.safe_load(text)
    except yaml.YAMLError as error:  # not common.load_yaml: this document is a list, not a mapping
        raise TaskFormatError(f"{where}: invalid YAML: {error}; fix the syntax there") from None
    if not isinstance(steps, list) or not all(isinstance(s, dict) and isinstance(s.get("command"), str)
                                              for s in steps):
        raise TaskFormatError(f"{where}: expected a list of steps each with a `command` string, e.g. "
                              "`- command: ls -l`")
    return "#!/bin/bash\n" + "\n".join(step["command"].rstrip("\n") for step in steps) + "\n"


def _solution(folder: Path) -> str | None:
    if (folder / "solution.sh").is_file():
        return common.read_text(folder / "solution.sh", "the oracle solution")
    if (folder / "solution.yaml").is_file():
        path = folder / "solution.yaml"
        return solution_from_yaml(common.read_text(path, "the oracle solution"), str(path))
    return None  # like the paper's tasks: imported, flagged no-oracle


def _check_compose(folder: Path) -> None:
    """Only the single-container layout (one `client` service built here) is served."""
    for name in ("docker-compose.yaml", "docker-compose.yml"):
        path = folder / name
        if not path.is_file():
            continue
        document = common.load_yaml(common.read_text(path, "the compose file"), str(path))
        services = document.get("services")
        if not isinstance(services, dict) or not services:
            raise TaskFormatError(f"{path}: field `services` must map service names to settings (Terminal-Bench "
                                  "expects a `client` service built from the Dockerfile)")
        if len(services) > 1:
            raise TaskFormatError(f"{path}: field `services` has {len(services)} services "
                                  f"({', '.join(services)}); only single-container tasks are supported")


def _seconds(fields: dict[str, Any], name: str, where: Path) -> float:
    value = fields.get(name, DEFAULT_TEST_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise TaskFormatError(f"{where}: field `{name}` must be a positive number of seconds, not {value!r}")
    return float(value)
