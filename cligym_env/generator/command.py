"""What `cligym generate` does, apart from parsing flags: per project, gold -> candidates -> tasks, then a report."""

from __future__ import annotations

import random
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cligym_env import paths
from cligym_env.error import CLIGymError, SourceError, UsageError
from cligym_env.generator.pipeline import Outcome, RunLog, generate_for_gold, interleave
from cligym_env.generator.report import build_report, to_markdown, write_report
from cligym_env.generator.types import SHORTCUT_CHOICES, EngineOptions, GenerateConfig
from cligym_env.runtime.docker_client import connect
from cligym_env.tasks import CATEGORIES, Registry

CANDIDATES_PER_OPERATOR = 8  # the scheduler spends the budget on the operators that bite: give it enough of them


def check_config(config: GenerateConfig) -> None:
    """A user's mistake in the options, as one clear `UsageError` naming the option and the choices."""
    unknown = sorted(set(config.categories) - set(CATEGORIES))
    if unknown:
        raise UsageError(f"--categories: unknown {unknown}; choose from {', '.join(CATEGORIES)}")
    if config.mode not in ("rules", "agentic"):
        raise UsageError(f"--mode {config.mode!r}: use rules or agentic")
    if config.shortcuts not in SHORTCUT_CHOICES:
        raise UsageError(f"--shortcuts {config.shortcuts!r}: use {' or '.join(SHORTCUT_CHOICES)}")
    if config.mode == "agentic" and not config.llm:
        raise UsageError("--mode agentic needs --llm (a local model folder for vLLM, or an OpenAI-compatible URL)")
    if config.source is not None and len(config.projects) != 1:
        raise SourceError(f"--source {config.source} needs exactly one --project (the project it is a source of)")
    if config.workers < 1 or config.max_tasks < 1:
        raise UsageError(f"--workers {config.workers} / --max-tasks {config.max_tasks}: both must be at least 1")


def run_generate(registry: Registry, config: GenerateConfig, console: Console) -> Path:
    """Generate into `registry`; return the report folder. Resumes the run log of the same mode and seed."""
    from cligym_env.generator.gold import GoldError, GoldOptions, build_gold, load_projects

    check_config(config)
    mode, seed, workers, max_tasks, proposals = config.mode, config.seed, config.workers, config.max_tasks, \
        config.proposals
    client = connect()
    projects = list(config.projects) or sorted(load_projects()[1])
    run_name = f"{mode}-seed{seed}"
    log = RunLog(paths.home() / "runs" / f"{run_name}.jsonl")
    model = _client(config.llm, config.engine) if mode == "agentic" else None
    started, outcomes, gold_images, failures = time.monotonic(), [], {}, []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
               TimeElapsedColumn()]
    try:
        with Progress(*columns, console=console) as progress:
            for index, name in enumerate(projects):
                goal = proposals if mode == "agentic" else max_tasks
                bar = progress.add_task(f"{name:<18}", total=goal, note="building the gold environment")
                try:
                    gold = build_gold(name, client=client, options=GoldOptions(source=config.source))
                except CLIGymError as error:  # not on PyPI, a suite unfit, a build or probe that failed: say so, go on
                    if config.source is not None:  # the one project asked for, from the user's own source
                        raise
                    progress.update(bar, note=f"[red]{error}"[:120])
                    console.print(f"[red]{name}: {error}")
                    failures.append(error)
                    continue
                gold_images[gold.project] = gold.image

                tried = [0]

                def advance(outcome: Outcome) -> None:
                    tried[0] += 1
                    progress.update(bar, advance=1 if mode == "agentic" or outcome.status == "accepted" else 0,
                                    note=f"tried {tried[0]}, last: {outcome.status} {outcome.reason}"[:60])

                if mode == "agentic":
                    from cligym_env.generator.agentic.run import generate_agentic

                    outcomes += generate_agentic(model, client, registry, gold, log, proposals=proposals,
                                                 workers=workers, seed=seed, keep_unverified=config.keep_unverified,
                                                 on_outcome=advance)
                else:
                    from cligym_env.generator.operators import propose

                    candidates = interleave(propose(gold.probe, random.Random(seed), config.categories or None,
                                                    per_operator=CANDIDATES_PER_OPERATOR),
                                            random.Random(seed), offset=index)
                    outcomes += generate_for_gold(client, registry, gold, candidates, log, max_tasks=max_tasks,
                                                  workers=workers, seed=seed, shortcuts=config.shortcuts,
                                                  on_outcome=advance)
    finally:
        if model is not None:
            model.close()
    if not gold_images:
        if len(failures) == 1:
            raise failures[0]
        if all(isinstance(error, UsageError) for error in failures):  # e.g. every name mistyped
            raise UsageError(f"no gold environment could be built for {', '.join(projects)}: "
                             + "; ".join(str(error) for error in failures))
        raise GoldError(f"no gold environment could be built for {', '.join(projects)} (reasons above)")
    report = build_report(outcomes, time.monotonic() - started, client, gold_images)  # this invocation's work
    folder = paths.home() / "runs" / run_name
    write_report(report, folder)
    console.print(to_markdown(report))
    console.print(f"report: {folder}")
    return folder


def _client(spec: str | None, engine: EngineOptions):
    from cligym_env.llm import make_client

    if not spec:
        return None
    if spec.startswith(("http://", "https://")):
        return make_client(spec)
    return make_client(spec, **{k: v for k, v in vars(engine).items() if v is not None})
