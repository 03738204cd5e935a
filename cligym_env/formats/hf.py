"""`cligym export --format hf OUT`: the registry as a `datasets`-loadable folder, one row per task.

    OUT/README.md                          dataset card: the schema below, and how to load it
    OUT/data/train-00000-of-00001.parquet  the rows

`datasets.load_dataset(OUT)` (or `load_dataset("parquet", data_files=...)`) reads it; publish the folder with
`huggingface-cli upload`. A row holds everything of the task folder: the Dockerfile builds FROM `base_image`
(cligym's gold images are rebuilt from `$CLIGYM_HOME/gold`; see `cligym export --format harbor` for folders that
build anywhere), the build context and hidden test files as (path, bytes) lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from cligym_env.images.build import base_images
from cligym_env.tasks.task import Task

DATA_FILE = "data/train-00000-of-00001.parquet"
SCHEMA: dict[str, str] = {  # column -> meaning (also written into the dataset card)
    "task_id": "string: the task id (folder name in a cligym registry)",
    "instruction": "string: the issue text the agent sees",
    "project": "string: the project the environment is made from",
    "category": "string: one of cligym's 8 categories (file-system, infrastructure, dependencies-runtime, ...)",
    "difficulty": "string: easy / medium / hard",
    "hint": "bool: whether the instruction carries a hint (each breakage comes with and without one)",
    "generator": "string: what made the task (rules:<operator>, agentic:..., manual, harbor-import, ...)",
    "created_at": "string: ISO 8601 time the task was made",
    "base_image": "string: the image the Dockerfile builds FROM",
    "dockerfile": "string: builds the broken environment",
    "environment_files": "list of {path: string, content: binary}: the Dockerfile's build context",
    "network": "bool: whether the agent's container has a network",
    "solution": "string: the oracle repair script (bash), empty when the task has none",
    "has_oracle": "bool: false for tasks imported without a solution",
    "tests_runner": "string: pytest (cligym's trusted runner), script, harbor or terminal-bench",
    "tests_config": "string: JSON of the runner settings (python, workdir, rootdir, pytest_args, plugins, "
                    "command, directory, timeout)",
    "test_files": "list of {path: string, content: binary}: the hidden tests, copied in only for grading",
    "fail_to_pass": "list of string: test ids failing in the broken environment that the repair must fix",
    "pass_to_pass": "list of string: test ids that must keep passing",
    "metadata_extra": "string: JSON of any further metadata",
}


def row(task: Task) -> dict[str, Any]:
    meta, tests = task.metadata, task.tests
    config = {key: list(value) if isinstance(value, tuple) else value for key, value in vars(tests).items()
              if key not in ("files", "fail_to_pass", "pass_to_pass", "runner")}
    bases = base_images(task.environment.dockerfile)
    return {
        "task_id": task.id, "instruction": task.instruction, "project": meta.project, "category": meta.category,
        "difficulty": meta.difficulty, "hint": meta.hint, "generator": meta.generator,
        "created_at": meta.created_at, "base_image": bases[-1] if bases else "",
        "dockerfile": task.environment.dockerfile, "environment_files": _files(task.environment.files),
        "network": task.environment.network, "solution": task.solution,
        "has_oracle": bool(task.solution.strip()) and not meta.extra.get("no_oracle", False),
        "tests_runner": tests.runner, "tests_config": json.dumps(config, sort_keys=True),
        "test_files": _files(tests.files), "fail_to_pass": list(tests.fail_to_pass),
        "pass_to_pass": list(tests.pass_to_pass), "metadata_extra": json.dumps(dict(meta.extra), default=str),
    }


def export_dataset(tasks: Iterable[Task], out: Path) -> Path:
    """Write the card and the parquet file; returns the parquet path."""
    from cligym_env.formats.common import pyarrow

    pa = pyarrow()
    parquet = pa.parquet
    files = pa.list_(pa.struct([("path", pa.string()), ("content", pa.binary())]))
    types = {"hint": pa.bool_(), "network": pa.bool_(), "has_oracle": pa.bool_(), "environment_files": files,
             "test_files": files, "fail_to_pass": pa.list_(pa.string()), "pass_to_pass": pa.list_(pa.string())}
    schema = pa.schema([(column, types.get(column, pa.string())) for column in SCHEMA])
    rows = [row(task) for task in tasks]
    out = Path(out)
    (out / DATA_FILE).parent.mkdir(parents=True, exist_ok=True)
    parquet.write_table(pa.Table.from_pylist(rows, schema=schema), out / DATA_FILE)
    (out / "README.md").write_text(_card(len(rows)))
    return out / DATA_FILE


def _files(files: dict[str, bytes] | Any) -> list[dict[str, Any]]:
    return [{"path": path, "content": bytes(files[path])} for path in sorted(files)]


def _card(count: int) -> str:
    columns = "\n".join(f"| `{column}` | {meaning} |" for column, meaning in SCHEMA.items())
    return f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: {DATA_FILE}
---
# CLI-Gym tasks ({count})

Exported by `cligym export --format hf`: one row per task. Load with
`datasets.load_dataset("path/to/this/folder", split="train")`.

| column | meaning |
|---|---|
{columns}
"""
