"""`cligym rollout | eval | curate | export-sft`, added to the main app with `register(app)`."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from agents.policies import POLICIES, PolicySpec, close_policy, make_policy
from agents.prompt import check_actions
from agents.trajectory import read_jsonl
from cligym_env.llm import SamplingSettings
from cligym_env.tasks.registry import Registry

console = Console(stderr=True)
Registry_ = typer.Option(None, "--registry", help="Task registry folder (default: $CLIGYM_HOME/tasks).")
Tasks = typer.Option(None, "--tasks", help="Comma-separated task ids, or `all` (the default).")
Category = typer.Option(None, "--category", help="Only the tasks of this category.")
Policy_ = typer.Option(None, "--policy", help=f"One of: {', '.join(POLICIES)}.")
Model = typer.Option("", "--model", help="vllm: a local model folder; openai: an endpoint URL.")
Episodes = typer.Option(None, "--episodes", help="Episodes per task (eval default: the largest k).")
Envs = typer.Option(4, "--envs", help="Environments run in lock-step (per Ray worker with --ray).")
Ray = typer.Option(False, "--ray", help="Spread the rollouts over a Ray cluster (RAY_ADDRESS or a local one).")
Workers = typer.Option(None, "--workers", help="Ray workers (default: one per node).")
MaxTurns = typer.Option(30, "--max-turns", help="Replies per episode, malformed ones included.")
MaxTokens = typer.Option(1024, "--max-tokens", help="Tokens per reply.")
Temperature = typer.Option(0.7, "--temperature")
Seed = typer.Option(0, "--seed")
MaxModelLen = typer.Option(None, "--max-model-len", help="The model's context; prompts are fitted to it.")
KvCache = typer.Option(None, "--kv-cache-gib", help="vllm: KV cache size (on CPU the default takes most memory).")
Tokenizer = typer.Option(None, "--tokenizer", help="openai: a local tokenizer for exact prompt lengths.")
Logprobs = typer.Option(False, "--logprobs", help="Keep sampled token ids and logprobs (for RL).")
CommandTimeout = typer.Option(60.0, "--command-timeout", help="Seconds per command.")
Actions = typer.Option("fenced", "--actions", help="vllm/openai: 'fenced' ```bash blocks or 'tools' "
                       "(bash(command), submit() tool calls).")


def register(app: typer.Typer) -> None:
    app.command("rollout")(rollout_command)
    app.command("eval")(eval_command)
    app.command("curate")(curate_command)
    app.command("export-sft")(export_sft_command)


def _registry(path: Optional[Path]) -> Registry:
    return Registry(path) if path else Registry.default()


def _split(registry: Registry, tasks: Optional[str], category: Optional[str]) -> list[str] | None:
    """The task ids asked for; None when neither --tasks nor --category narrows anything."""
    if tasks and tasks != "all":
        ids = [task_id.strip() for task_id in tasks.split(",") if task_id.strip()]
        for task_id in ids:
            registry.get(task_id)  # an unknown id fails now, with suggestions
        return [task_id for task_id in ids if not category or registry.get(task_id).metadata.category == category]
    if category:
        return [row["id"] for row in registry.query(category=category)]
    return registry.ids() if tasks == "all" else None


def _spec(policy: str, model: str, max_tokens: int, temperature: float, seed: int, max_model_len: Optional[int],
          kv_cache_gib: Optional[float], tokenizer: Optional[str], logprobs: bool) -> PolicySpec:
    sampling = SamplingSettings(temperature=temperature, max_tokens=max_tokens, seed=seed, logprobs=logprobs)
    engine = {"kv_cache_gib": kv_cache_gib} if kv_cache_gib and policy == "vllm" else {}
    return PolicySpec(policy, model, sampling, seed, max_model_len, tokenizer, engine)


def _run(spec: PolicySpec, registry: Registry, task_ids: list[str], episodes: int, out: Path, *, envs: int,
         use_ray: bool, workers: Optional[int], max_turns: int, command_timeout: float) -> None:
    if use_ray:
        import ray

        from agents.ray_rollout import ray_rollout

        ray.init()
        try:
            stats = ray_rollout(spec, task_ids, episodes, out=out, registry=registry, workers=workers, envs=envs,
                                max_turns=max_turns, command_timeout=command_timeout)
        finally:
            ray.shutdown()
    else:
        from agents.rollout import rollout

        agent = make_policy(spec, registry)
        try:
            stats = rollout(agent, task_ids, episodes, out=out, registry=registry, envs=envs, max_turns=max_turns,
                            command_timeout=command_timeout)
        finally:
            close_policy(agent)
    mean = sum(stats.rewards) / len(stats.rewards) if stats.rewards else 0.0
    console.print(f"{stats.episodes} episode(s) run ({stats.skipped} already in {out}), mean reward {mean:.3f}, "
                  f"{stats.episodes_per_minute:.1f} episodes/min; env {stats.env_s:.1f} s, "
                  f"policy {stats.policy_s:.1f} s of {stats.wall_s:.1f} s")


def rollout_command(policy: str = typer.Option(..., "--policy", help=f"One of: {', '.join(POLICIES)}."),
                    model: str = Model, tasks: Optional[str] = Tasks,
                    category: Optional[str] = Category, episodes: int = typer.Option(1, "--episodes"),
                    envs: int = Envs, out: Path = typer.Option(..., "--out", help="Trajectories (JSONL; resumed)."),
                    use_ray: bool = Ray, workers: Optional[int] = Workers, max_turns: int = MaxTurns,
                    max_tokens: int = MaxTokens, temperature: float = Temperature, seed: int = Seed,
                    max_model_len: Optional[int] = MaxModelLen, kv_cache_gib: Optional[float] = KvCache,
                    tokenizer: Optional[str] = Tokenizer, logprobs: bool = Logprobs,
                    command_timeout: float = CommandTimeout, registry: Optional[Path] = Registry_,
                    actions: str = Actions) -> None:
    """Run a policy on tasks, appending one trajectory per line to --out (a rerun skips finished episodes)."""
    tasks_registry = _registry(registry)
    task_ids = _split(tasks_registry, tasks, category) or tasks_registry.ids()
    spec = _spec(policy, model, max_tokens, temperature, seed, max_model_len, kv_cache_gib, tokenizer, logprobs)
    spec = replace(spec, actions=check_actions(actions))
    _run(spec, tasks_registry, task_ids, episodes, out, envs=envs, use_ray=use_ray, workers=workers,
         max_turns=max_turns, command_timeout=command_timeout)


def eval_command(trajectories: Path = typer.Argument(..., help="Trajectories (JSONL); written first with --policy."),
                 k: str = typer.Option("1", "--k", help="Comma-separated k values, e.g. 1,5."),
                 tasks: Optional[str] = Tasks, category: Optional[str] = Category,
                 as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
                 policy: Optional[str] = Policy_, model: str = Model, episodes: Optional[int] = Episodes,
                 envs: int = Envs, use_ray: bool = Ray, workers: Optional[int] = Workers, max_turns: int = MaxTurns,
                 max_tokens: int = MaxTokens, temperature: float = Temperature, seed: int = Seed,
                 max_model_len: Optional[int] = MaxModelLen, kv_cache_gib: Optional[float] = KvCache,
                 tokenizer: Optional[str] = Tokenizer, command_timeout: float = CommandTimeout,
                 registry: Optional[Path] = Registry_) -> None:
    """pass@1 / pass@k with confidence intervals over a task split, from a trajectories file or by running."""
    from agents.evaluate import evaluate

    ks = sorted({int(value) for value in k.split(",")})
    tasks_registry = _registry(registry)
    split = _split(tasks_registry, tasks, category)
    if policy:
        split = split or tasks_registry.ids()
        spec = _spec(policy, model, max_tokens, temperature, seed, max_model_len, kv_cache_gib, tokenizer, False)
        _run(spec, tasks_registry, split, episodes or max(ks), trajectories, envs=envs, use_ray=use_ray,
             workers=workers, max_turns=max_turns, command_timeout=command_timeout)
    report = evaluate(read_jsonl(trajectories), ks, task_ids=split)
    if as_json:
        print(json.dumps(asdict(report), indent=2))
        return
    table = Table("task", "episodes", "resolved", *(f"pass@{k}" for k in ks), "pass@1 95% (Wilson)")
    for score in report.tasks:
        table.add_row(score.task_id, str(score.n), str(score.resolved),
                      *(f"{score.pass_at[k]:.3f}" if k in score.pass_at else "-" for k in ks),
                      f"[{score.wilson[0]:.2f}, {score.wilson[1]:.2f}]")
    Console().print(table)
    for k_, (mean, low, high) in report.overall.items():
        Console().print(f"pass@{k_} = {mean:.3f}  ({report.confidence:.0%} bootstrap over "
                        f"{sum(k_ in s.pass_at for s in report.tasks)} tasks: [{low:.3f}, {high:.3f}])")
    if report.missing:
        console.print(f"[yellow]no episodes for {len(report.missing)} task(s) of the split:[/yellow] "
                      + ", ".join(report.missing))
    if report.infrastructure_failures:
        console.print(f"[yellow]{report.infrastructure_failures} episode(s) left out: they ended on an "
                      "infrastructure failure, not the policy's doing[/yellow]")
    if report.tampered:
        console.print(f"[red]{report.tampered} episode(s) tampered with grading (reward 0)[/red]")


def curate_command(trajectories: Path = typer.Argument(..., help="Trajectories (JSONL)."),
                   out: Path = typer.Option(..., "--out", help="Kept trajectories (JSONL, overwritten)."),
                   max_steps: int = typer.Option(20, "--max-steps", help="Keep episodes with fewer commands."),
                   registry: Optional[Path] = Registry_) -> None:
    """Keep resolved, short, shortcut-free, distinct trajectories: the SFT candidates."""
    from agents.curate import DEFAULT_TESTS_DIRS, curate
    from agents.trajectory import append_jsonl

    found = read_jsonl(trajectories)
    tasks_registry = _registry(registry)
    tests_dirs = {tasks_registry.get(t.task_id).tests.directory for t in found if t.task_id in tasks_registry}
    kept, dropped = curate(found, max_steps=max_steps, tests_dirs=sorted(tests_dirs | set(DEFAULT_TESTS_DIRS)))
    out.unlink(missing_ok=True)
    append_jsonl(out, kept)
    console.print(f"kept {len(kept)} of {len(found)} trajectories -> {out}")
    for reason, count in dropped.most_common():
        console.print(f"  dropped {count}: {reason}")


def export_sft_command(trajectories: Path = typer.Argument(..., help="Curated trajectories (JSONL)."),
                       out: Path = typer.Option(..., "--out", help="Dataset folder (datasets.save_to_disk)."),
                       tokenizer: Optional[str] = typer.Option(None, "--tokenizer",
                                                               help="Also tokenize with this model's chat template."),
                       max_length: Optional[int] = typer.Option(None, "--max-length", help="Truncate to N tokens.")
                       ) -> None:
    """Write an SFT set (`messages` column; `input_ids`/`labels` with --tokenizer) for TRL's SFTTrainer."""
    from agents.sft import export

    found = read_jsonl(trajectories)
    if not found:
        raise typer.BadParameter(f"{trajectories} holds no trajectories", param_hint="TRAJECTORIES")
    dataset = export(found, out, tokenizer=tokenizer, max_length=max_length)
    console.print(f"wrote {len(dataset)} conversations ({', '.join(dataset.column_names)}) -> {out}")
