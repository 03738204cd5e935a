"""The format commands: `cligym export --format harbor|hf OUT` and `cligym tasks import PATH`."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from cligym_env.tasks.registry import Registry
from cligym_env.tasks.task import Task
from cligym_env.error import UsageError

FORMATS = ("harbor", "hf")


def register(app: typer.Typer, tasks_app: typer.Typer) -> None:
    app.command("export")(_one_line_errors(export))
    tasks_app.command("import")(_one_line_errors(import_tasks))


def _one_line_errors(command: Callable[..., None]) -> Callable[..., None]:
    """A user's mistake is one line on stderr and exit status 2, not a traceback."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except UsageError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
    return run


def export(out: Path = typer.Argument(..., help="Folder to write (one subfolder per task for harbor)."),
           kind: str = typer.Option("harbor", "--format", help="harbor (task folders) or hf (a datasets folder)."),
           project: Optional[list[str]] = typer.Option(None, "--project", help="Only this project (repeatable)."),
           category: Optional[list[str]] = typer.Option(None, "--category", help="Only this category (repeatable)."),
           task_id: Optional[list[str]] = typer.Option(None, "--id", help="Only this task id (repeatable)."),
           registry: Optional[Path] = typer.Option(None, "--registry", help="Task registry folder (default: "
                                                   "$CLIGYM_HOME/tasks).")) -> None:
    """Write tasks as Harbor task folders (Terminal-Bench 2.0) or as a Hugging Face `datasets` folder."""
    from rich.console import Console

    if kind not in FORMATS:
        raise UsageError(f"--format {kind!r} is unknown; use one of {', '.join(FORMATS)}")
    tasks = select(Registry(registry) if registry else Registry.default(), project, category, task_id)
    console = Console(stderr=True)
    if kind == "hf":
        from cligym_env.formats.hf import export_dataset

        console.print(f"wrote {len(tasks)} rows to {export_dataset(tasks, out)}")
        return
    from cligym_env.formats.harbor import export_task

    for task in tasks:
        console.print(f"[green]exported[/green] {task.id} -> {export_task(task, out)}")


def import_tasks(path: Path = typer.Argument(..., help="A Harbor or Terminal-Bench task folder, a folder of them, "
                                             "or a .parquet / .jsonl file of the paper's dataset rows."),
                 overwrite: bool = typer.Option(False, help="Replace tasks with the same id."),
                 registry: Optional[Path] = typer.Option(None, "--registry", help="Task registry folder (default: "
                                                         "$CLIGYM_HOME/tasks).")) -> None:
    """Import Harbor / Terminal-Bench 1.0 tasks or dataset rows into the registry, graded by their own scripts."""
    from rich.console import Console

    from cligym_env.formats.importer import import_tasks as run_import

    tasks = run_import(path, Registry(registry) if registry else Registry.default(), exists=docker_images(),
                       overwrite=overwrite)
    console = Console(stderr=True)
    for task in tasks:
        flag = " [yellow](no oracle)[/yellow]" if task.metadata.extra.get("no_oracle") else ""
        console.print(f"[green]imported[/green] {task.id}{flag}")


def select(registry: Registry, projects: Optional[list[str]], categories: Optional[list[str]],
           ids: Optional[list[str]]) -> list[Task]:
    """The registry's tasks matching every filter given (each repeatable: any of its values)."""
    rows = registry.query()
    chosen = [row["id"] for row in rows if (not projects or row["project"] in projects)
              and (not categories or row["category"] in categories) and (not ids or row["id"] in ids)]
    missing = sorted(set(ids or ()) - {row["id"] for row in rows})
    if missing:
        raise UsageError(f"no task with id {', '.join(missing)} in {registry.path}; see `cligym tasks list`")
    if not chosen:
        raise UsageError(f"no task in {registry.path} matches the filters given")
    return [registry.get(task_id) for task_id in chosen]


def docker_images() -> Callable[[str], bool]:
    """Whether the Docker host has an image, pulling it where a registry answers (the real image beats a
    stand-in); with no daemon reachable, nothing counts as present."""
    from docker.errors import DockerException

    from cligym_env.images.build import image_exists
    from cligym_env.runtime.docker_client import connect
    from cligym_env.error import DockerUnavailableError

    try:
        client = connect()
    except DockerUnavailableError:
        return lambda image: False

    @functools.lru_cache(maxsize=None)
    def present(image: str) -> bool:
        if image_exists(client, image):
            return True
        try:
            client.images.pull(image)
        except DockerException:
            return False
        return True

    return present
