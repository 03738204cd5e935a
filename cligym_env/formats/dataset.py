"""Rows of the CLI-Gym paper's dataset (a local parquet or JSONL file) as Terminal-Bench `Task`s.

Columns vary across the dataset's revisions: `task_id`, `instruction`, `dockerfile`, `docker_compose`,
`run_tests` (the card), or `task_yaml` (the whole task.yaml, as other projects' adapters read it) beside
them. Each `dockerfile` starts FROM a SWE-smith image, so those must be on the Docker host (or mappable).
No oracle solutions are released: such rows are imported flagged no-oracle unless a `solution` column exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from cligym_env.formats import common
from cligym_env.formats.terminal_bench import DEFAULT_TEST_TIMEOUT, terminal_bench_tests
from cligym_env.tasks.task import Task
from cligym_env.error import TaskFormatError

SUFFIXES = (".parquet", ".jsonl", ".json")


def is_dataset(path: Path) -> bool:
    return path.is_file() and path.suffix in SUFFIXES


def read_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for each row: `file:line` for JSONL, `file#row N` (from 1) for parquet."""
    path = Path(path)
    if path.suffix == ".parquet":
        parquet = common.pyarrow().parquet
        try:
            table = parquet.read_table(path)
        except Exception as error:  # pyarrow raises its own ArrowInvalid / OSError kinds
            raise TaskFormatError(f"{path}: not a readable parquet file ({error})") from None
        for number, row in enumerate(table.to_pylist(), start=1):
            yield f"{path}#row {number}", row
        return
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as error:
                raise TaskFormatError(f"{path}:{number}: not a JSON object ({error}); write one row per line")
            if not isinstance(row, dict):
                raise TaskFormatError(f"{path}:{number}: expected a JSON object per line, found "
                                      f"{type(row).__name__}")
            yield f"{path}:{number}", row


def read_task(row: dict[str, Any], where: str, *, exists: common.ImageCheck) -> Task:
    fields = common.load_yaml(_text(row, "task_yaml", where), f"{where} (column task_yaml)") \
        if row.get("task_yaml") else {}
    text = row.get("instruction") or common.yaml_instruction(fields)
    if not text:
        raise TaskFormatError(f"{where}: column `instruction` is missing or empty, and no column `task_yaml` "
                              "holds one; every row needs the task's instruction")
    name = row.get("task_id") or row.get("id")
    if not isinstance(name, str):
        raise TaskFormatError(f"{where}: column `task_id` is missing or not text; every row needs its task id")
    solution = row.get("solution")
    timeout = fields.get("max_test_timeout_sec", DEFAULT_TEST_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise TaskFormatError(f"{where}: task_yaml field `max_test_timeout_sec` must be a positive number, "
                              f"not {timeout!r}")
    return Task(
        id=common.task_id(name, where),
        instruction=common.instruction(text, where),
        environment=common.environment(_text(row, "dockerfile", where), {}, network=True, exists=exists,
                                       where=f"{where} (column dockerfile)"),
        tests=terminal_bench_tests({"run-tests.sh": _text(row, "run_tests", where).encode()}, float(timeout)),
        solution=solution if isinstance(solution, str) else "",
        metadata=common.metadata({**fields, **{k: row[k] for k in ("category", "difficulty") if row.get(k)}},
                                 source="cligym-dataset", oracle=isinstance(solution, str) and bool(solution),
                                 where=where),
    )


def _text(row: dict[str, Any], column: str, where: str) -> str:
    value = row.get(column)
    if not isinstance(value, str) or not value.strip():
        raise TaskFormatError(f"{where}: column `{column}` is missing or empty; the row needs it "
                              f"(columns found: {', '.join(sorted(row))})")
    return value
