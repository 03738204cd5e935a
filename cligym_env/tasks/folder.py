"""One task as a plain folder, so people can browse it, edit it by hand and review it in a diff.

    <task-id>/task.toml, instruction.md, solution.sh, environment/Dockerfile (+ build context), tests/...

Every malformed folder raises `TaskError` naming the file and field and saying how to fix it.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import secrets
import shutil
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

import tomli_w

from cligym_env.tasks.task import CATEGORIES, Environment, Metadata, Task, TaskError, Tests
from cligym_env.error import TaskExistsError

TASK_FILE = "task.toml"
INSTRUCTION_FILE = "instruction.md"
SOLUTION_FILE = "solution.sh"
ENVIRONMENT_DIR = "environment"
DOCKERFILE = "Dockerfile"
TESTS_DIR = "tests"
SKIPPED_DIRS = frozenset({"__pycache__"})  # left behind by running the tests locally; never part of a task

_REQUIRED_FILES = {
    TASK_FILE: "the task's settings (id, [metadata], [environment], [tests])",
    INSTRUCTION_FILE: "the issue text shown to the agent",
    f"{ENVIRONMENT_DIR}/{DOCKERFILE}": "builds the broken image",
    SOLUTION_FILE: "the oracle fix that proves the task can be solved",
}

# kind -> (check, what it must be, example value)
_KINDS: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "text": (lambda v: isinstance(v, str), "a string", '"..."'),
    "flag": (lambda v: isinstance(v, bool), "true or false", "false"),
    "seconds": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number of seconds", "600"),
    "test ids": (
        lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
        "a list of test id strings",
        '["tests/test_app.py::test_fix"]',
    ),
    "strings": (lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v), "a list of strings",
                '["-q"]'),
    "table": (lambda v: isinstance(v, dict), "a table", "{}"),
}
_SCHEMA: dict[str, dict[str, str]] = {  # section ("" = top level) -> field -> kind
    "": {"id": "text", "metadata": "table", "environment": "table", "tests": "table"},
    "metadata": {
        "project": "text", "category": "text", "difficulty": "text", "hint": "flag",
        "generator": "text", "created_at": "text", "extra": "table",
    },
    "environment": {"network": "flag"},
    "tests": {
        "runner": "text", "python": "text", "workdir": "text", "rootdir": "text", "pytest_args": "strings",
        "plugins": "strings", "command": "text", "directory": "text", "timeout": "seconds",
        "fail_to_pass": "test ids", "pass_to_pass": "test ids",
    },
}
_REQUIRED_FIELDS = ("id", "tests.fail_to_pass")


def load_task(folder: Path) -> Task:
    """Read a whole task folder, file bytes included."""
    folder = Path(folder)
    task_id, metadata, network, tests = _parse(folder)
    context = _read_tree(folder / ENVIRONMENT_DIR)
    del context[DOCKERFILE]
    return _task(
        folder,
        id=task_id,
        instruction=_read_text(folder / INSTRUCTION_FILE),
        environment=Environment(_read_text(folder / ENVIRONMENT_DIR / DOCKERFILE), files=context, network=network),
        tests=Tests(files=_read_tree(folder / TESTS_DIR), **tests),
        solution=_read_text(folder / SOLUTION_FILE),
        metadata=metadata,
    )


def read_summary(folder: Path) -> dict[str, Any]:
    """`Task.summary()` from task.toml alone (required files only checked to exist), so indexing stays cheap."""
    folder = Path(folder)
    task_id, metadata, network, tests = _parse(folder)
    skeleton = _task(
        folder, id=task_id, instruction="", environment=Environment(dockerfile="", network=network),
        tests=Tests(**tests), solution="", metadata=metadata,
    )
    return skeleton.summary()


def write_task(task: Task, parent: Path, *, overwrite: bool = False) -> Path:
    """Write `parent/<id>/` atomically: build it under a hidden temporary name, then rename it into place.

    Raises `TaskExistsError` (a `TaskError` and `FileExistsError`) if the folder exists and not `overwrite`.
    """
    parent = Path(parent)
    final = parent / task.id
    if final.exists() and not overwrite:
        raise _exists(final)
    contents = _render(task)  # everything is checked before the disk is touched
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{task.id}.tmp-{secrets.token_hex(6)}"
    staging.mkdir()
    try:
        for relative, data in contents.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (staging / SOLUTION_FILE).chmod(0o755)
        _move_into_place(staging, final, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _parse(folder: Path) -> tuple[str, Metadata, bool, dict[str, Any]]:
    """Check the required files exist and task.toml is valid; return id, metadata, network, Tests fields."""
    if not folder.is_dir():
        raise TaskError(f"{folder}: no such task folder")
    for name, purpose in _REQUIRED_FILES.items():
        if not (folder / name).is_file():
            raise TaskError(_missing(folder / name, purpose))
    where = folder / TASK_FILE
    try:
        document = tomllib.loads(_read_text(where))
    except tomllib.TOMLDecodeError as error:
        raise TaskError(f"{where}: invalid TOML: {error}; fix the syntax there") from None
    _check(document, where)
    if document["id"] != folder.name:
        raise TaskError(
            f"{where}: field `id` is {document['id']!r} but the folder is named {folder.name!r}; "
            f'make them match (set id = "{folder.name}" or rename the folder)'
        )
    metadata = document.get("metadata", {})
    category = metadata.get("category", Metadata.category)
    if category not in CATEGORIES:
        raise TaskError(f"{where}: field `metadata.category` is {category!r}; {_choose(category, CATEGORIES)}")
    tests = dict(document["tests"])
    tests.setdefault("runner", "script" if "command" in tests and "python" not in tests else "pytest")  # older tasks
    for name in ("fail_to_pass", "pass_to_pass", "pytest_args", "plugins"):
        tests[name] = tuple(tests.get(name, ()))
    tests["timeout"] = float(tests.get("timeout", Tests.timeout))
    return document["id"], Metadata(**metadata), document.get("environment", {}).get("network", False), tests


def _check(document: dict[str, Any], where: Path) -> None:
    """Reject unknown fields (suggesting the close name), wrong types and missing required fields."""
    for section, fields in _SCHEMA.items():
        for key, value in (document.get(section, {}) if section else document).items():
            name = f"{section}.{key}" if section else key
            if key not in fields:
                raise TaskError(f"{where}: unknown field `{name}`; {_choose(key, list(fields))}")
            check, expected, example = _KINDS[fields[key]]
            if not check(value):
                fix = f"write it as a [{name}] section" if fields[key] == "table" else f"e.g. {key} = {example}"
                raise TaskError(f"{where}: field `{name}` must be {expected}, not {_describe(value)}; {fix}")
    for name in _REQUIRED_FIELDS:
        section, _, key = name.rpartition(".")
        if key not in (document.get(section, {}) if section else document):
            example = _KINDS[_SCHEMA[section][key]][2]
            place = f" under [{section}]" if section else " at the top"
            raise TaskError(f"{where}: required field `{name}` is missing; add {key} = {example}{place}")


def _render(task: Task) -> dict[str, bytes]:
    """Every file of the task folder, relative path -> bytes."""
    def table(values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
        return {key: list(v) if isinstance(v, tuple) else v for key, v in values.items() if key not in skip}

    metadata = table(vars(task.metadata), skip=("extra",))
    if task.metadata.extra:
        metadata["extra"] = dict(task.metadata.extra)
    unused = ("command",) if task.tests.runner == "pytest" else ("python", "workdir", "rootdir", "pytest_args", "plugins")
    tests = table(vars(task.tests), skip=("files", *unused)) | {"timeout": float(task.tests.timeout)}
    tests = {key: value for key, value in tests.items() if value != "" or key == "command"}
    environment = {"network": task.environment.network}
    document = {"id": task.id, "metadata": metadata, "environment": environment, "tests": tests}
    try:
        settings = tomli_w.dumps(document).encode()
    except (TypeError, ValueError) as error:
        raise TaskError(
            f"task {task.id}: metadata.extra cannot be written to {TASK_FILE} ({error}); "
            "use only strings, numbers, booleans, dates, lists and tables"
        ) from None
    contents = {
        TASK_FILE: settings,
        INSTRUCTION_FILE: task.instruction.encode(),
        SOLUTION_FILE: task.solution.encode(),
        f"{ENVIRONMENT_DIR}/{DOCKERFILE}": task.environment.dockerfile.encode(),
    }
    for directory, files, field in ((ENVIRONMENT_DIR, task.environment.files, "environment.files"),
                                    (TESTS_DIR, task.tests.files, "tests.files")):
        for relative, data in files.items():
            path = PurePosixPath(relative)
            if path.is_absolute() or not path.parts or ".." in path.parts or "\\" in relative:
                raise TaskError(f"task {task.id}: {field} path {relative!r} must be relative, without '..'")
            if f"{directory}/{path}" in contents:
                raise TaskError(f"task {task.id}: {field} must not contain {relative!r}; it has its own field")
            contents[f"{directory}/{path}"] = bytes(data)
    return contents


def _move_into_place(staging: Path, final: Path, overwrite: bool) -> None:
    """Rename staging to final; with overwrite, move the old folder aside and delete it only once the new one is in."""
    aside: list[Path] = []
    try:
        while True:
            try:
                os.rename(staging, final)
                break
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                if not overwrite:
                    raise _exists(final) from None
            old = final.with_name(f".{final.name}.old-{secrets.token_hex(6)}")
            with contextlib.suppress(FileNotFoundError):  # another writer moved it first: just retry
                os.rename(final, old)
                aside.append(old)
    except BaseException:
        if aside and not final.exists():
            os.rename(aside.pop(), final)
        raise
    for old in aside:
        shutil.rmtree(old, ignore_errors=True)


def _task(folder: Path, **fields: Any) -> Task:
    """Build the Task, naming the folder's task.toml in the errors `Task` raises itself."""
    try:
        return Task(**fields)
    except TaskError as error:
        raise TaskError(f"{folder / TASK_FILE}: {error}") from None


def _read_tree(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(directory, name)
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def _read_text(path: Path) -> str:
    """Decode without newline translation, so text round-trips byte for byte."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise TaskError(f"{path}: not valid UTF-8 text ({error}); save it as UTF-8") from None


def _missing(path: Path, purpose: str) -> str:
    siblings = [entry.name for entry in path.parent.iterdir()] if path.parent.is_dir() else []
    close = difflib.get_close_matches(path.name, siblings, n=1)
    fix = f"rename {close[0]!r} to {path.name!r}" if close else f"create it ({purpose})"
    return f"{path}: required file is missing; {fix}"


def _choose(value: str, allowed: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, allowed, n=1)
    return f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(allowed)}"


def _describe(value: Any) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "an integer", float: "a float", list: "an array", dict: "a table"}
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"{kinds.get(type(value), 'a date/time (quote it to make a string)')} {shown}"


def _exists(final: Path) -> TaskExistsError:
    return TaskExistsError(f"{final}: a task with this id already exists; pass overwrite=True to replace it")
