"""The `cligym` command: images, tasks, clean-up and the end-to-end demo."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from cligym_env.tasks.registry import Registry

app = typer.Typer(help="CLI-Gym: command-line repair tasks as Gymnasium environments.", no_args_is_help=True)
images_app = typer.Typer(help="Base images and task images.", no_args_is_help=True)
tasks_app = typer.Typer(help="Browse the task registry.", no_args_is_help=True)
app.add_typer(images_app, name="images")
app.add_typer(tasks_app, name="tasks")
console = Console(stderr=True)

RegistryOption = typer.Option(None, "--registry", help="Task registry folder (default: $CLIGYM_HOME/tasks).")


def _registry(path: Optional[Path]) -> Registry:
    return Registry(path) if path else Registry.default()


@images_app.command("bootstrap")
def images_bootstrap(no_registry: bool = typer.Option(False, help="Skip trying an image registry.")) -> None:
    """Build the base images locally (debootstrap + docker import) unless they exist."""
    from cligym_env.images import bootstrap
    from cligym_env.runtime.docker_client import connect

    for tag in bootstrap(connect(), log=console.print, use_registry=not no_registry):
        console.print(f"[green]ready[/green] {tag}")


@images_app.command("build")
def images_build(task_ids: list[str] = typer.Argument(None, help="Tasks to build (default: all)."),
                 registry: Optional[Path] = RegistryOption) -> None:
    """Build task images ahead of time (they are otherwise built on first reset)."""
    from cligym_env.images import build_environment
    from cligym_env.runtime.docker_client import connect

    tasks = _registry(registry)
    client = connect()
    for task_id in task_ids or tasks.ids():
        tag = build_environment(client, tasks.get(task_id).environment, what=f"task {task_id}")
        console.print(f"[green]built[/green] {task_id} -> {tag}")


@app.command()
def cleanup(stale: bool = typer.Option(False, help="Only containers whose owning process is gone.")) -> None:
    """Remove containers left by crashed runs (all cligym containers by default)."""
    from cligym_env.runtime.sandbox import cleanup as remove_containers

    removed = remove_containers(stale_only=stale)
    console.print(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed else ""))


@tasks_app.command("list")
def tasks_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON array of task summaries."),
               category: Optional[str] = None, project: Optional[str] = None, difficulty: Optional[str] = None,
               prefix: Optional[str] = typer.Option(None, help="Only ids starting with this."),
               registry: Optional[Path] = RegistryOption) -> None:
    """List tasks, optionally filtered."""
    rows = _registry(registry).query(category=category, project=project, difficulty=difficulty, id_prefix=prefix)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "project", "category", "difficulty", "f2p", "p2p")
    for row in rows:
        table.add_row(row["id"], row["project"], row["category"], row["difficulty"],
                      str(row["fail_to_pass"]), str(row["pass_to_pass"]))
    Console().print(table)


@tasks_app.command("show")
def tasks_show(task_id: str, as_json: bool = typer.Option(False, "--json", help="Print the task as JSON."),
               registry: Optional[Path] = RegistryOption) -> None:
    """Show one task: instruction, solution and tests."""
    task = _registry(registry).get(task_id)
    record = {**task.summary(), "instruction": task.instruction, "solution": task.solution,
              "dockerfile": task.environment.dockerfile, "test_command": task.tests.command,
              "fail_to_pass": list(task.tests.fail_to_pass), "pass_to_pass": list(task.tests.pass_to_pass)}
    if as_json:
        print(json.dumps(record, indent=2))
        return
    out = Console()
    out.rule(f"[bold]{task.id}[/bold] ({task.metadata.project}, {task.metadata.category})")
    out.print(task.instruction)
    out.rule("solution.sh")
    out.print(task.solution, markup=False)
    out.rule("tests")
    out.print(f"command: {task.tests.command}\nfail-to-pass: {len(task.tests.fail_to_pass)}  "
              f"pass-to-pass: {len(task.tests.pass_to_pass)}", markup=False)


@app.command()
def demo(project: str = typer.Option("iniconfig", help="PyPI project to mint tasks from ('' to skip)."),
         max_tasks: int = typer.Option(6, help="Breakages to mint from it."),
         registry: Optional[Path] = RegistryOption) -> None:
    """The main job end to end: images, a gold environment, minted tasks, then oracle and no-op on every task."""
    from cligym_env.demo import run_demo

    if not run_demo(_registry(registry), console, project=project, max_tasks=max_tasks):
        raise typer.Exit(1)


@app.command()
def generate(project: list[str] = typer.Option(None, "--project", "-p", help="PyPI project (repeatable; default: "
                                               "the shipped list)."),
             mode: str = typer.Option("rules", help="rules (inversion operators) or agentic (an LLM agent)."),
             max_tasks: int = typer.Option(20, help="Valid breakages to keep per project (rules mode)."),
             categories: str = typer.Option("", help="Comma-separated categories to draw from (default: all)."),
             workers: int = typer.Option(2, help="Candidates validated (or inversions run) at a time."),
             seed: int = typer.Option(0, help="Seed for sampling candidates; a rerun with it resumes."),
             llm: Optional[str] = typer.Option(None, help="Agentic mode: a local model folder (vLLM) or an "
                                               "OpenAI-compatible URL."),
             proposals: int = typer.Option(10, help="Agentic mode: proposals to try per project."),
             keep_unverified: bool = typer.Option(False, help="Agentic mode: keep breakages whose repair script "
                                                  "failed, flagged; CLIGym-v0 leaves them out unless "
                                                  "include_unverified=True."),
             max_model_len: Optional[int] = typer.Option(None, help="Agentic mode, local model: context length."),
             kv_cache_gib: Optional[float] = typer.Option(None, help="Agentic mode, local model: KV cache size "
                                                          "(on CPU vLLM's default takes most of the memory)."),
             dtype: str = typer.Option("auto", help="Agentic mode, local model: weights dtype (float32 is "
                                       "fastest on CPU for small models)."),
             shortcuts: str = typer.Option("keep", help="keep or drop breakages that one reinstall from the "
                                           "wheelhouse (of the project, or of everything) already repairs; "
                                           "either way the report shows their share."),
             registry: Optional[Path] = RegistryOption) -> None:
    """Mint tasks by environment inversion from real projects, validate them, and add them to the registry."""
    from cligym_env.generator.command import run_generate
    from cligym_env.error import UsageError
    from cligym_env.generator.gold import GoldError
    from cligym_env.generator.types import EngineOptions, GenerateConfig

    config = GenerateConfig(
        projects=tuple(project or ()), mode=mode, max_tasks=max_tasks,
        categories=tuple(c for c in categories.split(",") if c), workers=workers, seed=seed, llm=llm,
        proposals=proposals, keep_unverified=keep_unverified, shortcuts=shortcuts,
        engine=EngineOptions(max_model_len=max_model_len, kv_cache_gib=kv_cache_gib, dtype=dtype))
    try:
        run_generate(_registry(registry), config, console)
    except (GoldError, UsageError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


def _register_agent_commands() -> None:
    """rollout, eval, curate and export-sft live with the agents they drive."""
    from agents.cli import register

    register(app)


_register_agent_commands()


@app.callback()
def _on_start() -> None:
    # A SIGTERM (a scheduler stopping the job) becomes a normal exit, so atexit removes open containers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
