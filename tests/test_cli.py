"""The `cligym` command's stable surface: JSON listings, clean-up, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from typer.testing import CliRunner

from cligym_env.cli import app
from cligym_env.images import BASE_IMAGE
from cligym_env.runtime.sandbox import Sandbox

runner = CliRunner()


def test_tasks_list_json(example_registry):
    result = runner.invoke(app, ["tasks", "list", "--json", "--registry", str(example_registry.path)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["id"] for row in rows] == ["example-bad-permission", "example-corrupted-config",
                                           "example-missing-module"]
    assert {"id", "category", "project"} <= set(rows[0])
    filtered = runner.invoke(app, ["tasks", "list", "--json", "--category", "infrastructure",
                                   "--registry", str(example_registry.path)])
    assert [row["id"] for row in json.loads(filtered.stdout)] == ["example-corrupted-config"]


def test_tasks_show_json(example_registry):
    result = runner.invoke(app, ["tasks", "show", "example-bad-permission", "--json",
                                 "--registry", str(example_registry.path)])
    record = json.loads(result.stdout)
    assert record["id"] == "example-bad-permission"
    assert "Permission denied" in record["instruction"]
    assert "chmod +x" in record["solution"]
    assert record["fail_to_pass"] == ["test_inventory.py::test_report_command"]
    assert len(record["pass_to_pass"]) == 4


def test_unknown_task_suggests_close_ids(example_registry):
    result = runner.invoke(app, ["tasks", "show", "example-bad-permision", "--registry", str(example_registry.path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "did you mean example-bad-permission," in result.stderr.lower()


def test_default_registry_starts_with_the_examples(cligym_home):
    result = runner.invoke(app, ["tasks", "list", "--json"])
    assert len(json.loads(result.stdout)) == 3
    assert (cligym_home / "tasks" / "example-missing-module" / "task.toml").exists()


def test_cleanup_removes_containers_of_crashed_runs(docker_client):
    script = (f"import os; from cligym_env.runtime.sandbox import Sandbox; b = Sandbox({BASE_IMAGE!r}, task_id='cli')"
              ".start(); print(b.name, flush=True); os._exit(1)")
    name = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout.strip()
    with Sandbox(BASE_IMAGE, task_id="cli-alive", client=docker_client) as alive:
        result = runner.invoke(app, ["cleanup"])  # only containers whose owner is gone
        assert result.exit_code == 0 and name in result.output and alive.name not in result.output
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_generate_names_a_project_that_does_not_exist(docker_client, tmp_path):
    result = runner.invoke(app, ["generate", "--project", "no-such-project-cligym-xyzzy", "--registry",
                                 str(tmp_path / "registry")])
    assert result.exit_code == 2 and "Traceback" not in result.output  # a mistyped name is the user's to fix
    assert "no-such-project-cligym-xyzzy" in result.output and "not found" in result.output


def test_generate_rejects_an_unknown_category(docker_client, tmp_path):
    result = runner.invoke(app, ["generate", "--project", "iniconfig", "--categories", "filesystem",
                                 "--registry", str(tmp_path / "registry")])
    assert result.exit_code == 2 and "file-system" in result.output


def _copy_example(registry, name: str, edit_toml=lambda text: text, extra_dockerfile: str = "") -> None:
    folder = registry.path / name
    shutil.copytree(registry.path / "example-bad-permission", folder)
    toml = folder / "task.toml"
    toml.write_text(edit_toml(toml.read_text().replace('"example-bad-permission"', f'"{name}"')))
    dockerfile = folder / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + extra_dockerfile)


def test_tasks_list_warns_about_unreadable_folders(example_registry):
    _copy_example(example_registry, "example-typo", lambda text: text.replace("[tests]", "[tests]\ntimout = 3"))
    result = runner.invoke(app, ["tasks", "list", "--json", "--registry", str(example_registry.path)])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 3
    assert "example-typo" in result.stderr and "tests.timout" in result.stderr and "timeout" in result.stderr


def test_tasks_check_validates_every_folder_and_builds_its_image(example_registry, docker_client):
    _copy_example(example_registry, "example-typo", lambda text: text.replace("[tests]", "[tests]\ntimout = 3"))
    _copy_example(example_registry, "example-unbuildable", extra_dockerfile="\nRUN exit 7\n")
    result = runner.invoke(app, ["tasks", "check", "--registry", str(example_registry.path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "ok: example-bad-permission" in result.stderr and "ok: example-missing-module" in result.stderr
    assert "example-typo: " in result.stderr and "example-unbuildable: task example-unbuildable: docker build failed" \
        in " ".join(result.stderr.split())
    assert "3 of 5 task(s) ok" in result.stderr
    one = runner.invoke(app, ["tasks", "check", "example-bad-permission", "--registry", str(example_registry.path)])
    assert one.exit_code == 0 and "1 of 1 task(s) ok" in one.stderr
