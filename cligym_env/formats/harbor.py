"""Harbor's task layout (Terminal-Bench 2.0), both ways.

    <task>/instruction.md, task.toml, environment/Dockerfile (+ context), solution/solve.sh, tests/test.sh

Export (`export_task`): the Dockerfile is made self-contained FROM a public image (`images.self_contained`), and
tests/ carries cligym's runner (`pytest_runner.py` with pytest in `lib.zip`, `verdict.py`, `junit.py`) with the
hidden tests under tests/cases/, run by `harbor_test.sh` as tests/test.sh. Harbor uploads tests/ only at
verification time, so the tests stay out of the agent's reach as in cligym. Import (`read_task`): a Harbor folder
becomes a `Task` with runner "harbor", graded by its own test.sh and reward file (`grading/external.py`).
"""

from __future__ import annotations

import json
import shlex
import shutil
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from cligym_env.files import read_tree
from cligym_env.formats import common
from cligym_env.formats.images import self_contained
from cligym_env.tasks.task import VERDICTS, Task, Tests
from cligym_env.error import ExportError, TaskFormatError

TEST_COMMAND = "bash /tests/test.sh"  # what Harbor's verifier runs (after uploading tests/ to /tests)
AGENT_TIMEOUT_SEC = 1800.0
_RESOURCES = {"build_timeout_sec": 1800.0, "cpus": 1, "memory_mb": 2048, "storage_mb": 10240}


def render(task: Task) -> dict[str, bytes]:
    """Every file of the task's Harbor folder (relative path -> bytes)."""
    if task.tests.runner not in ("pytest", "harbor"):
        raise ExportError(f"task {task.id}: tests.runner {task.tests.runner!r} cannot be exported to Harbor yet; "
                          "tasks with the pytest runner (every task cligym makes) and Harbor tasks can")
    environment = self_contained(task.environment, what=f"task {task.id}")
    files = {"instruction.md": task.instruction.encode(), "task.toml": _task_toml(task).encode(),
             "environment/Dockerfile": environment.dockerfile.encode(), "solution/solve.sh": task.solution.encode()}
    files.update({f"environment/{name}": data for name, data in environment.files.items()})
    tests = dict(task.tests.files) if task.tests.runner == "harbor" else _pytest_tests(task.tests)
    files.update({f"tests/{name}": data for name, data in tests.items()})
    return files


def export_task(task: Task, out: Path) -> Path:
    """Write `out/<id>/` (replacing an older export of it); scripts are made executable."""
    folder = Path(out) / task.id
    files = render(task)
    if folder.exists():
        shutil.rmtree(folder)
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if name.endswith(".sh"):
            path.chmod(0o755)
    return folder


def is_task(folder: Path) -> bool:
    return (folder / "task.toml").is_file() and (folder / "instruction.md").is_file()


def read_task(folder: Path, *, exists: common.ImageCheck) -> Task:
    """A Harbor task folder as a `Task` graded by its own tests/test.sh and reward file."""
    folder = Path(folder)
    where = folder / "task.toml"
    try:
        config = tomllib.loads(common.read_text(where, "the task's settings"))
    except tomllib.TOMLDecodeError as error:
        raise TaskFormatError(f"{where}: invalid TOML: {error}; fix the syntax there") from None
    sections = {name: _table(config, name, where) for name in ("metadata", "verifier", "agent", "environment")}
    if (folder / "steps").is_dir():
        raise TaskFormatError(f"{folder / 'steps'}: multi-step Harbor tasks are not supported; import single-step "
                              "tasks (instruction.md, tests/ and solution/ at the top)")
    env = sections["environment"]
    image = _field(env, "docker_image", str, where, "environment", None)
    network = _field(env, "allow_internet", bool, where, "environment", True)
    context = read_tree(folder / "environment")
    if image:
        dockerfile = f"FROM {image}\n"
    elif "Dockerfile" in context:
        dockerfile = context.pop("Dockerfile").decode("utf-8", "replace")
    else:
        compose = [n for n in context if n.startswith("docker-compose")]
        raise TaskFormatError(f"{folder / 'environment' / 'Dockerfile'}: required file is missing"
                              + ("; compose (multi-container) environments are not supported" if compose else
                                 "; add the Dockerfile or set [environment] docker_image in task.toml"))
    tests = read_tree(folder / "tests")
    if "test.sh" not in tests:
        raise TaskFormatError(f"{folder / 'tests' / 'test.sh'}: required file is missing (the verifier script "
                              "that writes /logs/verifier/reward.txt); create it")
    solution_files = read_tree(folder / "solution")
    oracle = "solve.sh" in solution_files
    solution = common.bundled_solution(solution_files, "solve.sh", "/solution") if oracle else ""
    timeout = _field(sections["verifier"], "timeout_sec", (int, float), where, "verifier", 600.0)
    fields = dict(sections["metadata"])
    return Task(
        id=common.task_id(folder.name, str(folder)),
        instruction=_instruction(folder / "instruction.md"),
        environment=common.environment(dockerfile, context, network=network, exists=exists,
                                       where=str(folder / "environment" / "Dockerfile")),
        tests=Tests(runner="harbor", command=TEST_COMMAND, files=tests, directory="/tests", timeout=float(timeout),
                    fail_to_pass=(VERDICTS["harbor"],)),
        solution=solution,
        metadata=common.metadata(fields, source="harbor", oracle=oracle, where=str(folder)),
    )


def _instruction(path: Path) -> str:
    text = common.read_text(path, "the task's instruction")
    if not text.strip():
        raise TaskFormatError(f"{path}: the instruction is empty; write the task for the agent there")
    return text


def _pytest_tests(tests: Tests) -> dict[str, bytes]:
    """tests/ of an exported cligym task: test.sh, cligym's runner and verdict, the hidden tests in cases/."""
    from cligym_env.grading import harness

    package = resources.files("cligym_env")
    runner = harness._context()  # pytest_runner.py and lib.zip: exactly what the grading harness volume holds
    settings = "".join(f"{name}={shlex.quote(value)}\n" for name, value in (
        ("PYTHON", tests.python), ("WORKDIR", tests.workdir), ("ROOTDIR", tests.rootdir or tests.workdir),
        ("PLUGINS", ",".join(tests.plugins)), ("DIRECTORY", tests.directory.rstrip("/")),
        ("TIMEOUT", f"{tests.timeout:g}")))
    settings += "ARGS=(" + " ".join(shlex.quote(arg) for arg in tests.pytest_args) + ")\n"
    files = {
        "test.sh": package.joinpath("formats/harbor_test.sh").read_bytes(),
        "cligym/settings.sh": settings.encode(),
        "cligym/selected.json": json.dumps(list(tests.selected)).encode(),
        "cligym/verdict.py": package.joinpath("formats/verdict.py").read_bytes(),
        "cligym/junit.py": package.joinpath("grading/junit.py").read_bytes(),
        **{f"cligym/{name}": data for name, data in runner.items()},
    }
    files.update({f"cases/{name}": data for name, data in tests.files.items()})
    return files


def _task_toml(task: Task) -> str:
    meta = task.metadata
    metadata: dict[str, Any] = {
        "author_name": "cligym", "difficulty": meta.difficulty, "category": meta.category,
        "tags": ["cligym", meta.category, *([meta.project] if meta.project else [])],
        "cligym_id": task.id, "project": meta.project, "hint": meta.hint, "generator": meta.generator,
        "created_at": meta.created_at}
    document = {
        "version": "1.0", "metadata": metadata,
        "verifier": {"timeout_sec": float(task.tests.timeout) + 60.0},
        "agent": {"timeout_sec": AGENT_TIMEOUT_SEC},
        "environment": {**_RESOURCES, "allow_internet": task.environment.network},
    }
    return tomli_w.dumps(document)


def _table(config: dict[str, Any], name: str, where: Path) -> dict[str, Any]:
    value = config.get(name, {})
    if not isinstance(value, dict):
        raise TaskFormatError(f"{where}: `{name}` must be a table ([{name}]), not {type(value).__name__}")
    return value


def _field(section: dict[str, Any], name: str, kind: Any, where: Path, table: str, default: Any) -> Any:
    value = section.get(name, default)
    if value is not default and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
        raise TaskFormatError(f"{where}: field `{table}.{name}` has the wrong type ({value!r}); see Harbor's "
                              "task.toml reference")
    return value
