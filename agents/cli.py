"""The `cligym` entry point: the library's app (`cligym_env.cli`) plus the commands that drive agents.

The one module that composes both layers: `cligym_env` never imports `agents`, so the agent commands
(rollout, eval, curate, export-sft, demo) are added here, to the same app and its error model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from agents.evaluate import EvalConfig
from agents.policies import POLICIES, PolicySpec, close_policy, make_policy
from agents.prompt import check_actions
from agents.rollout import RolloutConfig
from agents.trajectory import read_jsonl
from cligym_env.cli import RegistryOption, app, open_registry, warn_unreadable
from cligym_env.error import ConfigError
from cligym_env.llm import SamplingSettings
from cligym_env.tasks.registry import Registry
from cligym_env.tasks.task import CATEGORIES

logger = logging.getLogger(__name__)

Tasks = typer.Option(None, "--tasks", help="Comma-separated task ids, or `all` (the default).")
Category = typer.Option(None, "--category", help=f"Only the tasks of this category: {', '.join(CATEGORIES)}.")
Policy_ = typer.Option(None, "--policy", help=f"One of: {', '.join(POLICIES)}.")
Model = typer.Option("", "--model", help="vllm: a local model folder; openai: an endpoint URL.")
Episodes = typer.Option(None, "--episodes", min=1, help="Episodes per task (eval default: the largest k).")
Envs = typer.Option(4, "--envs", min=1, help="Environments run in lock-step (per Ray worker with --ray).")
Ray = typer.Option(False, "--ray", help="Spread the rollouts over a Ray cluster (RAY_ADDRESS or a local one).")
Workers = typer.Option(None, "--workers", min=1, help="Ray workers (default: one per node).")
MaxTurns = typer.Option(30, "--max-turns", min=1, help="Replies per episode, malformed ones included.")
MaxTokens = typer.Option(1024, "--max-tokens", min=1, help="Tokens per reply.")
Temperature = typer.Option(0.7, "--temperature", min=0.0)
Seed = typer.Option(0, "--seed")
MaxModelLen = typer.Option(None, "--max-model-len", min=1, help="The model's context; prompts are fitted to it.")
KvCache = typer.Option(None, "--kv-cache-gib", help="vllm: KV cache size (on CPU the default takes most memory).")
Tokenizer = typer.Option(None, "--tokenizer", help="openai: a local tokenizer for exact prompt lengths.")
Logprobs = typer.Option(False, "--logprobs", help="Keep sampled token ids and logprobs (for RL).")
CommandTimeout = typer.Option(60.0, "--command-timeout", min=0.1, help="Seconds per command.")
Actions = typer.Option("fenced", "--actions", help="vllm/openai: 'fenced' ```bash blocks or 'tools' "
                       "(bash(command), submit() tool calls).")


def split(registry: Registry, tasks: Optional[str], category: Optional[str]) -> list[str] | None:
    """The task ids asked for (unknown ids and categories are usage errors); None when nothing narrows them."""
    if category is not None and category not in CATEGORIES:
        raise ConfigError(f"--category {category!r} is not a category; use one of: {', '.join(CATEGORIES)}")
    if tasks and tasks != "all":
        ids = [task_id.strip() for task_id in tasks.split(",") if task_id.strip()]
        if not ids:
            raise ConfigError(f"--tasks {tasks!r} names no task; give comma-separated ids or `all`")
        chosen = [registry.get(task_id) for task_id in ids]  # an unknown id fails now, with suggestions
        found = [task.id for task in chosen if not category or task.metadata.category == category]
    elif category:
        found = [row["id"] for row in registry.query(category=category)]
    else:
        warn_unreadable(registry)
        return registry.ids() if tasks == "all" else None
    if not found:
        raise ConfigError(f"no task of category {category!r} among {tasks or 'the tasks'} in {registry.path}; "
                          "see `cligym tasks list --category ...`")
    return found


def _spec(policy: str, model: str, max_tokens: int, temperature: float, seed: int, max_model_len: Optional[int],
          kv_cache_gib: Optional[float], tokenizer: Optional[str], logprobs: bool) -> PolicySpec:
    sampling = SamplingSettings(temperature=temperature, max_tokens=max_tokens, seed=seed, logprobs=logprobs)
    engine = {"kv_cache_gib": kv_cache_gib} if kv_cache_gib and policy == "vllm" else {}
    return PolicySpec(policy, model, sampling, seed, max_model_len, tokenizer, engine)


def _run(spec: PolicySpec, registry: Registry, task_ids: list[str], out: Path, config: RolloutConfig, *,
         use_ray: bool, workers: Optional[int]) -> None:
    if use_ray:
        import ray

        from agents.ray_rollout import ray_rollout

        ray.init()
        try:
            stats = ray_rollout(spec, task_ids, out, config, registry=registry, workers=workers)
        finally:
            ray.shutdown()
    else:
        from agents.rollout import rollout

        agent = make_policy(spec, registry)
        try:
            stats = rollout(agent, task_ids, out, config, registry=registry)
        finally:
            close_policy(agent)
    mean = sum(stats.rewards) / len(stats.rewards) if stats.rewards else 0.0
    logger.info("%d episode(s) run (%d already in %s), mean reward %.3f, %.1f episodes/min; env %.1f s, policy "
                "%.1f s of %.1f s", stats.episodes, stats.skipped, out, mean, stats.episodes_per_minute, stats.env_s,
                stats.policy_s, stats.wall_s)
    for task_id, why in sorted(stats.unbuildable.items()):
        logger.warning("skipped %s: its image cannot be built: %s", task_id, why)


@app.command("rollout")
def rollout_command(policy: str = typer.Option(..., "--policy", help=f"One of: {', '.join(POLICIES)}."),
                    model: str = Model, tasks: Optional[str] = Tasks,
                    category: Optional[str] = Category, episodes: int = typer.Option(1, "--episodes", min=1),
                    envs: int = Envs, out: Path = typer.Option(..., "--out", help="Trajectories (JSONL; resumed)."),
                    use_ray: bool = Ray, workers: Optional[int] = Workers, max_turns: int = MaxTurns,
                    max_tokens: int = MaxTokens, temperature: float = Temperature, seed: int = Seed,
                    max_model_len: Optional[int] = MaxModelLen, kv_cache_gib: Optional[float] = KvCache,
                    tokenizer: Optional[str] = Tokenizer, logprobs: bool = Logprobs,
                    command_timeout: float = CommandTimeout, registry: Optional[Path] = RegistryOption,
                    actions: str = Actions) -> None:
    """Run a policy on tasks, appending one trajectory per line to --out (a rerun skips finished episodes)."""
    spec = _spec(policy, model, max_tokens, temperature, seed, max_model_len, kv_cache_gib, tokenizer, logprobs)
    spec = replace(spec, actions=check_actions(actions))
    tasks_registry = open_registry(registry)
    task_ids = split(tasks_registry, tasks, category) or tasks_registry.ids()
    config = RolloutConfig(episodes=episodes, envs=envs, max_turns=max_turns, command_timeout=command_timeout)
    _run(spec, tasks_registry, task_ids, out, config, use_ray=use_ray, workers=workers)


@app.command("eval")
def eval_command(trajectories: Path = typer.Argument(..., help="Trajectories (JSONL); written first with --policy."),
                 k: str = typer.Option("1", "--k", help="Comma-separated k values, e.g. 1,5."),
                 tasks: Optional[str] = Tasks, category: Optional[str] = Category,
                 as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
                 policy: Optional[str] = Policy_, model: str = Model, episodes: Optional[int] = Episodes,
                 envs: int = Envs, use_ray: bool = Ray, workers: Optional[int] = Workers, max_turns: int = MaxTurns,
                 max_tokens: int = MaxTokens, temperature: float = Temperature, seed: int = Seed,
                 max_model_len: Optional[int] = MaxModelLen, kv_cache_gib: Optional[float] = KvCache,
                 tokenizer: Optional[str] = Tokenizer, command_timeout: float = CommandTimeout,
                 registry: Optional[Path] = RegistryOption) -> None:
    """pass@1 / pass@k with confidence intervals over a task split, from a trajectories file or by running."""
    from agents.evaluate import evaluate

    config = EvalConfig(ks=EvalConfig.parse_ks(k))
    tasks_registry = open_registry(registry)
    chosen = split(tasks_registry, tasks, category)
    if policy:
        spec = _spec(policy, model, max_tokens, temperature, seed, max_model_len, kv_cache_gib, tokenizer, False)
        chosen = chosen or tasks_registry.ids()
        rollout = RolloutConfig(episodes=episodes or max(config.ks), envs=envs, max_turns=max_turns,
                                command_timeout=command_timeout)
        _run(spec, tasks_registry, chosen, trajectories, rollout, use_ray=use_ray, workers=workers)
    elif not trajectories.is_file():
        raise ConfigError(f"{trajectories}: no such trajectories file; write it with `cligym rollout --out` or "
                          "pass --policy to run one now")
    report = evaluate(read_jsonl(trajectories), config, task_ids=chosen)
    if as_json:
        print(json.dumps(asdict(report), indent=2))
        return
    table = Table("task", "episodes", "resolved", *(f"pass@{k}" for k in config.ks), "pass@1 95% (Wilson)")
    for score in report.tasks:
        table.add_row(score.task_id, str(score.n), str(score.resolved),
                      *(f"{score.pass_at[k]:.3f}" if k in score.pass_at else "-" for k in config.ks),
                      f"[{score.wilson[0]:.2f}, {score.wilson[1]:.2f}]")
    Console().print(table)
    for k_, (mean, low, high) in report.overall.items():
        Console().print(f"pass@{k_} = {mean:.3f}  ({report.confidence:.0%} bootstrap over "
                        f"{sum(k_ in s.pass_at for s in report.tasks)} tasks: [{low:.3f}, {high:.3f}])")
    if report.missing:
        logger.warning("no episodes for %d task(s) of the split: %s", len(report.missing), ", ".join(report.missing))
    if report.infrastructure_failures:
        logger.warning("%d episode(s) left out: they ended on an infrastructure failure, not the policy's doing",
                       report.infrastructure_failures)
    if report.tampered:
        logger.warning("%d episode(s) tampered with grading (reward 0)", report.tampered)


@app.command("curate")
def curate_command(trajectories: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                       help="Trajectories (JSONL)."),
                   out: Path = typer.Option(..., "--out", help="Kept trajectories (JSONL, overwritten)."),
                   max_steps: int = typer.Option(20, "--max-steps", min=1, help="Keep episodes with fewer commands."),
                   registry: Optional[Path] = RegistryOption) -> None:
    """Keep resolved, short, shortcut-free, distinct trajectories: the SFT candidates."""
    from agents.curate import DEFAULT_TESTS_DIRS, curate
    from agents.trajectory import append_jsonl

    found = read_jsonl(trajectories)
    tasks_registry = open_registry(registry)
    tests_dirs = {tasks_registry.get(t.task_id).tests.directory for t in found if t.task_id in tasks_registry}
    kept, dropped = curate(found, max_steps=max_steps, tests_dirs=sorted(tests_dirs | set(DEFAULT_TESTS_DIRS)))
    out.unlink(missing_ok=True)
    append_jsonl(out, kept)
    logger.info("kept %d of %d trajectories -> %s", len(kept), len(found), out)
    for reason, count in dropped.most_common():
        logger.info("  dropped %d: %s", count, reason)


@app.command("export-sft")
def export_sft_command(trajectories: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                           help="Curated trajectories (JSONL)."),
                       out: Path = typer.Option(..., "--out", help="Dataset folder (datasets.save_to_disk)."),
                       tokenizer: Optional[str] = typer.Option(None, "--tokenizer",
                                                               help="Also tokenize with this model's chat template."),
                       max_length: Optional[int] = typer.Option(None, "--max-length", min=1,
                                                                help="Truncate to N tokens.")) -> None:
    """Write an SFT set (`messages` column; `input_ids`/`labels` with --tokenizer) for TRL's SFTTrainer."""
    from agents.sft import export

    found = read_jsonl(trajectories)
    if not found:
        raise ConfigError(f"{trajectories} holds no trajectories; write them with `cligym rollout` and "
                          "`cligym curate` first")
    dataset = export(found, out, tokenizer=tokenizer, max_length=max_length)
    logger.info("wrote %d conversations (%s) -> %s", len(dataset), ", ".join(dataset.column_names), out)


@app.command()
def demo(project: str = typer.Option("iniconfig", help="PyPI project to mint tasks from ('' to skip)."),
         max_tasks: int = typer.Option(6, min=1, help="Breakages to mint from it."),
         registry: Optional[Path] = RegistryOption) -> None:
    """The main job end to end: images, a gold environment, minted tasks, then oracle and no-op on every task."""
    from agents.demo import run_demo

    if not run_demo(open_registry(registry), project=project, max_tasks=max_tasks):
        raise typer.Exit(1)


def main() -> None:
    """The `cligym` console script."""
    app()


if __name__ == "__main__":
    main()
