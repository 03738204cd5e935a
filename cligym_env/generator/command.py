"""What `cligym generate` does, apart from parsing flags: per project, gold -> candidates -> tasks, then a report."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cligym_env import paths
from cligym_env.error import SourceError
from cligym_env.generator.pipeline import Outcome, RunLog, generate_for_gold, interleave
from cligym_env.generator.report import build_report, to_markdown, write_report
from cligym_env.runtime.docker_client import connect
from cligym_env.tasks import CATEGORIES, Registry


def run_generate(registry: Registry, projects: Sequence[str], *, mode: str, max_tasks: int, categories: Sequence[str],
                 workers: int, seed: int, llm: str | None, proposals: int, console: Console,
                 engine: dict[str, Any] | None = None, keep_unverified: bool = False,
                 source: Path | None = None) -> Path:
    """Generate into `registry`; return the report folder. Resumes the run log of the same mode and seed.

    `source` (a checkout or archive) replaces the sdist of the one project named, for sdists without tests.
    `engine` holds options for a local vLLM engine (max_model_len, kv_cache_gib, dtype); URLs ignore them."""
    from cligym_env.generator.gold import GoldError, GoldOptions, build_gold, load_projects

    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; choose from {', '.join(CATEGORIES)}")
    if mode == "agentic" and not llm:
        raise ValueError("--mode agentic needs --llm (a local model folder for vLLM, or an OpenAI-compatible URL)")
    if source is not None and len(projects) != 1:
        raise SourceError(f"--source {source} needs exactly one --project (the project it is a source of)")
    client = connect()
    projects = list(projects) or sorted(load_projects()[1])
    run_name = f"{mode}-seed{seed}"
    log = RunLog(paths.home() / "runs" / f"{run_name}.jsonl")
    model = _client(llm, engine or {}) if mode == "agentic" else None
    started, outcomes, gold_images = time.monotonic(), [], {}
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
               TimeElapsedColumn()]
    try:
        with Progress(*columns, console=console) as progress:
            for name in projects:
                goal = proposals if mode == "agentic" else max_tasks
                bar = progress.add_task(f"{name:<18}", total=goal, note="building the gold environment")
                try:
                    gold = build_gold(name, client=client, options=GoldOptions(source=source))
                except GoldError as error:  # not on PyPI, or its suite cannot pass well enough: say so, go on
                    if source is not None:  # the one project asked for, from the user's own source
                        raise
                    progress.update(bar, note=f"[red]{error}"[:120])
                    console.print(f"[red]{name}: {error}")
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
                                                 workers=workers, seed=seed, keep_unverified=keep_unverified,
                                                 on_outcome=advance)
                else:
                    from cligym_env.generator.operators import propose

                    candidates = interleave(propose(gold.probe, random.Random(seed), categories or None),
                                            random.Random(seed))
                    outcomes += generate_for_gold(client, registry, gold, candidates, log, max_tasks=max_tasks,
                                                  workers=workers, seed=seed, on_outcome=advance)
    finally:
        if model is not None:
            model.close()
    if not gold_images:
        raise GoldError(f"no gold environment could be built for {', '.join(projects)} (reasons above)")
    report = build_report(outcomes, time.monotonic() - started, client, gold_images)  # this invocation's work
    folder = paths.home() / "runs" / run_name
    write_report(report, folder)
    console.print(to_markdown(report))
    console.print(f"report: {folder}")
    return folder


def _client(spec: str | None, engine: dict[str, Any]):
    from cligym_env.llm import make_client

    if not spec:
        return None
    if spec.startswith(("http://", "https://")):
        return make_client(spec)
    return make_client(spec, **{k: v for k, v in engine.items() if v is not None})
