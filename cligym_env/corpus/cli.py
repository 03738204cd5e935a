"""`cligym tasks install` and `cligym tasks pack build|report`: the pack commands, registered on `tasks`."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cligym_env.error import UsageError

console = Console(stderr=True)
pack_app = typer.Typer(help="Build task packs and their quality reports.", no_args_is_help=True)
_COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def _one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A user's mistake is one red line and exit status 2, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)],
                            force=True)
        try:
            return command(*args, **kwargs)
        except UsageError as error:
            console.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
            raise typer.Exit(2) from None
    return wrapper


@_one_line_errors
def install(pack: str = typer.Argument(..., help="A shipped pack's name (e.g. cligym-v0-sample) or a pack folder."),
            project: list[str] = typer.Option(None, "--project", "-p", help="Only this project (repeatable)."),
            category: Optional[str] = typer.Option(None, help="Only this category."),
            split: Optional[str] = typer.Option(None, help="train or heldout (held-out projects are never "
                                                "trained on)."),
            limit: Optional[int] = typer.Option(None, help="At most this many tasks."),
            build: bool = typer.Option(False, help="Also build the images now (else on first reset)."),
            registry: Optional[Path] = typer.Option(None, help="Task registry folder (default: $CLIGYM_HOME/tasks).")
            ) -> None:
    """Fill the registry from a task pack, without Docker; images build lazily on first reset."""
    from cligym_env.corpus.install import install as install_pack, select
    from cligym_env.corpus.pack import load_pack
    from cligym_env.tasks.registry import Registry

    loaded = load_pack(pack)
    target = Registry(registry) if registry else Registry.default()
    count = min(2 * len(select(loaded, projects=project or (), category=category, split=split, limit=limit)),
                limit or 10**9)
    with Progress(*_COLUMNS, console=console) as progress:
        bar = progress.add_task(f"installing {loaded.name} {loaded.version}", total=count)
        ids = install_pack(loaded, target, projects=project or (), category=category, split=split, limit=limit,
                           on_task=lambda task_id: progress.advance(bar))
    console.print(f"[green]installed[/green] {len(ids)} tasks into {target.path}")
    if build:
        _build_images(target, ids)


def _build_images(registry: Any, ids: list[str]) -> None:
    from cligym_env.images import build_environment
    from cligym_env.runtime.docker_client import connect

    client = connect()
    with Progress(*_COLUMNS, TextColumn("{task.fields[note]}"), console=console) as progress:
        bar = progress.add_task("building images", total=len(ids), note="")
        for task_id in ids:
            progress.update(bar, note=task_id)
            build_environment(client, registry.get(task_id).environment, what=f"task {task_id}",
                              on_line=lambda line: progress.update(bar, note=f"{task_id}: {line[-50:]}"))
            progress.advance(bar)


@pack_app.command("build")
@_one_line_errors
def pack_build(name: str = typer.Argument(..., help="Pack name, e.g. cligym-v0-sample."),
               from_registry: Path = typer.Option(..., "--from-registry", help="Registry of generated tasks "
                                                  "(e.g. $CLIGYM_HOME/tasks)."),
               version: str = typer.Option("0.1.0", help="The pack's version."),
               out: Optional[Path] = typer.Option(None, help="Pack folder (default: the shipped packs folder)."),
               heldout: list[str] = typer.Option(None, "--heldout", help="Held-out project (repeatable; default: "
                                                 "20% of projects, chosen by name hash)."),
               home: Optional[Path] = typer.Option(None, help="The CLIGYM_HOME that generated them (gold recipes, "
                                                   "run logs; default: the registry's parent)."),
               description: str = typer.Option("", help="One line saying what the pack is."),
               report: bool = typer.Option(True, help="Also write REPORT.md and report/*.png.")) -> None:
    """Pack generated tasks and their gold recipes as versioned text."""
    from cligym_env.corpus.build import build_pack
    from cligym_env.corpus.pack import PACKS_DIR, projected_bytes, text_bytes

    folder = out or PACKS_DIR / name
    pack = build_pack(name, from_registry, folder, version=version, description=description,
                      heldout=heldout or (), home=home)
    tasks, size = 2 * len(pack.breakages), text_bytes(folder)
    console.print(f"[green]packed[/green] {tasks} tasks into {folder}: {size:,} bytes, {size / tasks:,.0f} bytes "
                  f"per task; {projected_bytes(folder, len(pack.breakages)) / 1e6:.1f} MB projected for 1,000 "
                  "breakages (2,000 tasks) from these projects (budget 25 MB)")
    if report:
        pack_report(str(folder))


@pack_app.command("report")
@_one_line_errors
def pack_report(pack: str = typer.Argument(..., help="A shipped pack's name or a pack folder.")) -> None:
    """Write the pack's quality report (REPORT.md and report/*.png) next to it."""
    from cligym_env.corpus.pack import load_pack
    from cligym_env.corpus.report import write_report

    path = write_report(load_pack(pack))
    console.print(f"[green]report[/green] {path}")


def register(tasks_app: typer.Typer) -> None:
    tasks_app.command("install")(install)
    tasks_app.add_typer(pack_app, name="pack")
