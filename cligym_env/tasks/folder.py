"""One task as a plain folder, so people can browse it, edit it by hand and review it in a diff.

    <task-id>/task.toml, instruction.md, solution.sh, environment/Dockerfile (+ build context), tests/...

Every malformed folder raises `TaskError` naming the file and field and saying how to fix it.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import jsonschema
import tomli_w

from cligym_env.tasks.task import CATEGORIES, Environment, Metadata, Task, TaskError, Tests
from cligym_env.error import TaskExistsError
from cligym_env.files import read_tree, staged_folder

TASK_FILE = "task.toml"
INSTRUCTION_FILE = "instruction.md"
SOLUTION_FILE = "solution.sh"
ENVIRONMENT_DIR = "environment"
DOCKERFILE = "Dockerfile"
TESTS_DIR = "tests"

_REQUIRED_FILES = {
    TASK_FILE: "the task's settings (id, [metadata], [environment], [tests])",
    INSTRUCTION_FILE: "the issue text shown to the agent",
    f"{ENVIRONMENT_DIR}/{DOCKERFILE}": "builds the broken image",
    SOLUTION_FILE: "the oracle fix that proves the task can be solved",
}

# The task.toml schema (JSON Schema, checked by `jsonschema`). Each field's "x-what" and "x-example" make the message
# for a wrong value: "field `tests.timeout` must be a number of seconds, not a string 'ten'; e.g. timeout = 600".
_TEXT = {"type": "string", "x-what": "a string", "x-example": '"..."'}
_FLAG = {"type": "boolean", "x-what": "true or false", "x-example": "false"}
_STRINGS = {"type": "array", "items": {"type": "string"}, "x-what": "a list of strings", "x-example": '["-q"]'}
_TEST_IDS = {**_STRINGS, "x-what": "a list of test id strings", "x-example": '["tests/test_app.py::test_fix"]'}
_TABLE = {"type": "object", "x-what": "a table", "x-example": "{}"}


def _section(fields: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {**_TABLE, "properties": fields, "additionalProperties": False, "required": list(required)}


TASK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    **_section({
        "id": _TEXT,
        "metadata": _section({"project": _TEXT, "category": _TEXT, "difficulty": _TEXT, "hint": _FLAG,
                              "generator": _TEXT, "created_at": _TEXT, "extra": _TABLE}),
        "environment": _section({"network": _FLAG}),
        "tests": _section({
            "runner": _TEXT, "python": _TEXT, "workdir": _TEXT, "rootdir": _TEXT, "pytest_args": _STRINGS,
            "plugins": _STRINGS, "command": _TEXT, "directory": _TEXT,
            "timeout": {"type": "number", "x-what": "a number of seconds", "x-example": "600"},
            "fail_to_pass": _TEST_IDS, "pass_to_pass": _TEST_IDS,
        }, required=("fail_to_pass",)),
    }, required=("id", "tests")),
}
_VALIDATOR = jsonschema.Draft202012Validator(TASK_SCHEMA)


def load_task(folder: Path) -> Task:
    """Read a whole task folder, file bytes included."""
    folder = Path(folder)
    task_id, metadata, network, tests = _parse(folder)
    context = read_tree(folder / ENVIRONMENT_DIR)
    del context[DOCKERFILE]
    return _task(
        folder,
        id=task_id,
        instruction=_read_text(folder / INSTRUCTION_FILE),
        environment=Environment(_read_text(folder / ENVIRONMENT_DIR / DOCKERFILE), files=context, network=network),
        tests=Tests(files=read_tree(folder / TESTS_DIR), **tests),
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
    with staged_folder(final, overwrite=overwrite, exists=_exists) as staging:
        for relative, data in contents.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (staging / SOLUTION_FILE).chmod(0o755)
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
    """Validate against `TASK_SCHEMA`; the first error names the field, what it must be and a fix."""
    error = min(_VALIDATOR.iter_errors(document), key=lambda e: (len(e.path), str(list(e.path))), default=None)
    if error is None:
        return
    path = [str(part) for part in error.path if not isinstance(part, int)]
    name = ".".join(path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema["properties"])
        key = next(key for key in error.instance if key not in allowed)
        raise TaskError(f"{where}: unknown field `{'.'.join([*path, key])}`; {_choose(key, allowed)}")
    if error.validator == "required":
        key = next(key for key in error.validator_value if key not in error.instance)
        example = error.schema["properties"][key].get("x-example", "...")
        place = f" under [{name}]" if name else " at the top"
        raise TaskError(f"{where}: required field `{'.'.join([*path, key])}` is missing; add {key} = {example}{place}")
    field = error.schema if "x-what" in error.schema else _field_schema(error)
    key = path[-1] if path else "?"
    fix = f"write it as a [{name}] section" if field.get("type") == "object" else f"e.g. {key} = {field['x-example']}"
    shown = error.instance if len(error.path) == len(path) else _value_at(document, path)
    raise TaskError(f"{where}: field `{name}` must be {field['x-what']}, not {_describe(shown)}; {fix}")


def _field_schema(error: jsonschema.ValidationError) -> dict[str, Any]:
    """The schema of the field an error inside it (e.g. a list item of the wrong type) belongs to."""
    schema: dict[str, Any] = TASK_SCHEMA
    for part in error.path:
        if isinstance(part, int):
            break
        schema = schema["properties"][part]
    return schema


def _value_at(document: dict[str, Any], path: list[str]) -> Any:
    for part in path:
        document = document[part]
    return document


def _render(task: Task) -> dict[str, bytes]:
    """Every file of the task folder, relative path -> bytes."""
    def table(values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
        return {key: list(v) if isinstance(v, tuple) else v for key, v in values.items() if key not in skip}

    metadata = table(vars(task.metadata), skip=("extra",))
    if task.metadata.extra:
        metadata["extra"] = dict(task.metadata.extra)
    unused = (("command",) if task.tests.runner == "pytest"
              else ("python", "workdir", "rootdir", "pytest_args", "plugins"))
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


def _task(folder: Path, **fields: Any) -> Task:
    """Build the Task, naming the folder's task.toml in the errors `Task` raises itself."""
    try:
        return Task(**fields)
    except TaskError as error:
        raise TaskError(f"{folder / TASK_FILE}: {error}") from None


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
