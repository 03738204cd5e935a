"""`cligym export --format hf`: a folder `datasets.load_dataset` reads, one row per task, in the documented schema."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cligym_env.cli import app
from cligym_env.formats.hf import SCHEMA
from cligym_env.tasks import Registry


def test_hf_export_loads_with_datasets(example_registry: Registry, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "hf"
    result = CliRunner().invoke(app, ["export", "--format", "hf", str(out), "--registry", str(example_registry.path),
                                      "--category", "file-system", "--category", "infrastructure"])
    assert result.exit_code == 0, result.output
    rows = datasets.load_dataset(str(out), split="train")
    assert rows.column_names == list(SCHEMA)
    assert sorted(rows["task_id"]) == ["example-bad-permission", "example-corrupted-config"]
    row = next(r for r in rows if r["task_id"] == "example-bad-permission")
    task = example_registry.get("example-bad-permission")
    assert row["instruction"] == task.instruction and row["solution"] == task.solution and row["has_oracle"]
    assert row["base_image"] == "cligym/python:bookworm" and row["dockerfile"] == task.environment.dockerfile
    assert {f["path"]: f["content"] for f in row["test_files"]} == dict(task.tests.files)
    assert {f["path"]: f["content"] for f in row["environment_files"]} == dict(task.environment.files)
    assert row["fail_to_pass"] == list(task.tests.fail_to_pass) and row["pass_to_pass"] == list(task.tests.pass_to_pass)
    assert json.loads(row["tests_config"])["python"] == "/opt/venv/bin/python"
    card = (out / "README.md").read_text()
    assert all(f"`{column}`" in card for column in SCHEMA)


def test_export_filters_must_match(example_registry: Registry, tmp_path: Path) -> None:
    for args, message in ((["--id", "no-such-task"], "no task with id no-such-task"),
                          (["--project", "nothing"], "no task in"), (["--format", "csv"], "--format 'csv' is unknown")):
        result = CliRunner().invoke(app, ["export", str(tmp_path / "x"), "--registry", str(example_registry.path),
                                          *args])
        assert result.exit_code == 2 and message in result.output, result.output
