"""The `cligym` command of the library: images, tasks, clean-up and task generation.

`agents/cli.py` composes this app with the agent commands (rollout, eval, curate, export-sft, demo) and is the
`cligym` entry point; this module never imports `agents`. Errors follow one model (`CLIGymGroup.main`):
a `UsageError` is one line on stderr and exit status 2, any other `CLIGymError` one line and exit 1, and
anything else is our bug: its traceback is kept, with a line asking to report it.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from typer.core import TyperGroup

try:  # typer vendors its own click since 0.2x; older ones use click itself
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

from cligym_env.error import CLIGymError, UnknownTaskError, UsageError
from cligym_env.tasks.registry import Registry

logger = logging.getLogger(__name__)
ISSUES = "https://github.com/cligym/cligym_env/issues"


class CLIGymGroup(TyperGroup):
    """Turns errors into the CLI's error model; CliRunner goes through `main` too, so tests see what users see."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        setup_logging()
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as error:  # click's own: unknown option, bad value, missing argument
            _error_line(_click_message(error))
            return _exit(error.exit_code, standalone_mode)
        except typer.Abort:
            _error_line("aborted")
            return _exit(1, standalone_mode)
        except UsageError as error:
            _error_line(str(error))
            return _exit(2, standalone_mode)
        except CLIGymError as error:  # Docker, the host, a build: one line, then any detail it carries (a build log)
            first, _, detail = str(error).strip().partition("\n")
            _error_line(first)
            if detail:
                typer.echo(detail, err=True)
            return _exit(1, standalone_mode)
        except Exception:
            typer.echo(f"cligym: this is a bug in cligym, not your mistake; please report it with the traceback "
                       f"below at {ISSUES}", err=True)
            raise
        return _exit(code if isinstance(code, int) else 0, standalone_mode)


def _exit(code: int, standalone_mode: bool) -> int:
    if standalone_mode:
        sys.exit(code)
    return code


def _error_line(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)


def _click_message(error: ClickException) -> str:
    message = error.format_message()
    context = getattr(error, "ctx", None)
    if context is not None:
        message += f" (see `{context.command_path} --help`)"
    return message


def setup_logging(level: int = logging.INFO) -> None:
    """Log records of cligym_env and agents through rich, on stderr (installed once per process)."""
    root = logging.getLogger()
    if not any(isinstance(handler, RichHandler) for handler in root.handlers):
        handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    for name in ("cligym_env", "agents"):
        logging.getLogger(name).setLevel(level)


app = typer.Typer(cls=CLIGymGroup, help="CLI-Gym: command-line repair tasks as Gymnasium environments.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
images_app = typer.Typer(help="Base images and task images.", no_args_is_help=True)
tasks_app = typer.Typer(help="Browse and check the task registry.", no_args_is_help=True)
app.add_typer(images_app, name="images")
app.add_typer(tasks_app, name="tasks")

RegistryOption = typer.Option(None, "--registry", help="Task registry folder (default: $CLIGYM_HOME/tasks).")


def open_registry(path: Optional[Path]) -> Registry:
    """The registry at `path` (default: the user's); a path that is a file is a usage error."""
    if path is not None and path.exists() and not path.is_dir():
        raise UsageError(f"--registry {path}: not a folder; give the folder that holds the task folders")
    return Registry(path) if path else Registry.default()


def warn_unreadable(registry: Registry) -> None:
    """One warning per task folder the registry leaves out, so no folder disappears silently."""
    for folder, problem in registry.problems():
        logger.warning("task folder %s left out: %s", folder.name, problem)


@app.callback()
def _on_start() -> None:
    # A SIGTERM (a scheduler stopping the job) becomes a normal exit, so atexit removes open containers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@images_app.command("bootstrap")
def images_bootstrap(no_registry: bool = typer.Option(False, help="Skip trying an image registry.")) -> None:
    """Build the base images locally (debootstrap + docker import) unless they exist."""
    from cligym_env.images import bootstrap
    from cligym_env.runtime.docker_client import connect

    for tag in bootstrap(connect(), use_registry=not no_registry):
        logger.info("ready: %s", tag)


@images_app.command("build")
def images_build(task_ids: list[str] = typer.Argument(None, help="Tasks to build (default: all)."),
                 registry: Optional[Path] = RegistryOption) -> None:
    """Build task images ahead of time (they are otherwise built on first reset)."""
    from cligym_env.images import build_environment
    from cligym_env.runtime.docker_client import connect

    tasks = open_registry(registry)
    chosen = [tasks.get(task_id) for task_id in task_ids or tasks.ids()]  # unknown ids fail before any build
    client = connect()
    for task in chosen:
        tag = build_environment(client, task.environment, what=f"task {task.id}")
        logger.info("built %s -> %s", task.id, tag)


@app.command()
def cleanup(all_: bool = typer.Option(False, "--all", help="Every cligym container on this Docker host, live "
                                      "episodes of other processes and users included.")) -> None:
    """Remove containers and grading snapshots whose owning process is gone (crashed runs)."""
    from cligym_env.runtime.sandbox import cleanup as remove_containers

    removed = remove_containers(stale_only=not all_)
    logger.info("removed %d container(s)%s", len(removed), ": " + ", ".join(removed) if removed else "")


@tasks_app.command("list")
def tasks_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON array of task summaries."),
               category: Optional[str] = None, project: Optional[str] = None, difficulty: Optional[str] = None,
               prefix: Optional[str] = typer.Option(None, help="Only ids starting with this."),
               registry: Optional[Path] = RegistryOption) -> None:
    """List tasks, optionally filtered; warns about task folders that cannot be read."""
    tasks = open_registry(registry)
    rows = tasks.query(category=category, project=project, difficulty=difficulty, id_prefix=prefix)
    warn_unreadable(tasks)
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
    task = open_registry(registry).get(task_id)
    record = {**task.summary(), "instruction": task.instruction, "solution": task.solution,
              "dockerfile": task.environment.dockerfile, "test_command": task.tests.command,
              "fail_to_pass": list(task.tests.fail_to_pass), "pass_to_pass": list(task.tests.pass_to_pass)}
    if as_json:
        print(json.dumps(record, indent=2))
        return
    out = Console()
    out.rule(f"[bold]{task.id}[/bold] ({task.metadata.project}, {task.metadata.category})")
    out.print(task.instruction, markup=False)
    out.rule("solution.sh")
    out.print(task.solution, markup=False)
    out.rule("tests")
    out.print(f"command: {task.tests.command}\nfail-to-pass: {len(task.tests.fail_to_pass)}  "
              f"pass-to-pass: {len(task.tests.pass_to_pass)}", markup=False)


@tasks_app.command("check")
def tasks_check(task_ids: list[str] = typer.Argument(None, help="Task folders to check (default: every one)."),
                no_build: bool = typer.Option(False, "--no-build", help="Only validate the folders."),
                registry: Optional[Path] = RegistryOption) -> None:
    """Validate every task folder and build its image, so a task that would fail at reset is found now."""
    from cligym_env.images import build_environment
    from cligym_env.runtime.docker_client import connect

    tasks = open_registry(registry)
    unreadable = {folder.name: problem for folder, problem in tasks.problems()}
    chosen = list(task_ids or [*tasks.ids(), *unreadable])
    client = None if no_build else connect()
    bad = {}
    for task_id in chosen:
        if task_id in unreadable:
            bad[task_id] = unreadable[task_id]
            continue
        try:
            task = tasks.get(task_id)
            if client is not None:
                build_environment(client, task.environment, what=f"task {task_id}")
        except UnknownTaskError:
            raise  # asked for by name: a usage error
        except CLIGymError as error:
            bad[task_id] = str(error)
            continue
        logger.info("ok: %s", task_id)
    for task_id, problem in sorted(bad.items()):
        logger.error("%s: %s", task_id, problem)
    logger.info("%d of %d task(s) ok", len(chosen) - len(bad), len(chosen))
    if bad:
        raise typer.Exit(1)


@app.command()
def generate(project: list[str] = typer.Option(None, "--project", "-p", help="PyPI project (repeatable; default: "
                                               "the shipped list)."),
             mode: str = typer.Option("rules", help="rules (inversion operators) or agentic (an LLM agent)."),
             max_tasks: int = typer.Option(20, min=1, help="Valid breakages to keep per project (rules mode)."),
             categories: str = typer.Option("", help="Comma-separated categories to draw from (default: all)."),
             workers: int = typer.Option(2, min=1, help="Candidates validated (or inversions run) at a time."),
             seed: int = typer.Option(0, help="Seed for sampling candidates; a rerun with it resumes."),
             llm: Optional[str] = typer.Option(None, help="Agentic mode: a local model folder (vLLM) or an "
                                               "OpenAI-compatible URL."),
             proposals: int = typer.Option(10, min=1, help="Agentic mode: proposals to try per project."),
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
             source: Optional[Path] = typer.Option(None, help="A checkout folder or an sdist/tar/zip archive of the "
                                                   "one --project, used instead of its PyPI sdist (e.g. when the "
                                                   "sdist ships no tests)."),
             registry: Optional[Path] = RegistryOption) -> None:
    """Mint tasks by environment inversion from real projects, validate them, and add them to the registry."""
    from cligym_env.generator.command import run_generate
    from cligym_env.generator.types import EngineOptions, GenerateConfig

    config = GenerateConfig(
        projects=tuple(project or ()), mode=mode, max_tasks=max_tasks,
        categories=tuple(c for c in categories.split(",") if c), workers=workers, seed=seed, llm=llm,
        proposals=proposals, keep_unverified=keep_unverified, shortcuts=shortcuts, source=source,
        engine=EngineOptions(max_model_len=max_model_len, kv_cache_gib=kv_cache_gib, dtype=dtype))
    run_generate(open_registry(registry), config, Console(stderr=True))  # errors: the app's error model


def _register_plugin_commands() -> None:
    """`tasks install` and `tasks pack build|report` live with the pack format (cligym_env/corpus);
    `export` and `tasks import` with the task formats (cligym_env/formats)."""
    from cligym_env.corpus.cli import register as register_pack_commands
    from cligym_env.formats.cli import register as register_format_commands

    register_pack_commands(tasks_app)
    register_format_commands(app, tasks_app)


_register_plugin_commands()


def main() -> None:
    """`python -m cligym_env.cli`: the library's commands only (the `cligym` entry point adds the agents')."""
    app()


if __name__ == "__main__":
    main()
