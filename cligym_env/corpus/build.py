"""Build a pack from what `cligym generate` left: a registry of generated tasks and the gold recipes beside it.

Everything the pack leaves out is checked to be recoverable before it is left out: the test files and configs
must equal the pinned sdist's, pass-to-pass must be the gold's passing tests less fail-to-pass, each task's
Dockerfile must start FROM its gold image, and a wheel is marked "index" only if the index serves it byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from cligym_env.corpus import artifacts
from cligym_env.corpus.pack import (Artifact, Breakage, GoldRecipe, Pack, load_pack, projected_bytes, text_bytes,
                                    write_pack)
from cligym_env.error import PackError
from cligym_env.generator import wheelhouse
from cligym_env.generator.source import read_sdist
from cligym_env.generator.gold import PROJECT_DIR, load_gold
from cligym_env.generator.types import GoldEnvironment
from cligym_env.tasks.registry import Registry
from cligym_env.tasks.task import Task

logger = logging.getLogger(__name__)
HELDOUT_SHARE = 0.2
# metadata.extra that installing gives back (from the gold recipe and the pack), so never packed
_FROM_GOLD = ("gold_image", "project_version", "pack", "pack_version", "split")


def build_pack(name: str, registry_dir: Path, out: Path, *, version: str = "0.1.0", description: str = "",
               heldout: Sequence[str] = (), home: Path | None = None) -> Pack:
    """Pack every generated task of `registry_dir`; gold recipes and run logs are read from `home`
    (default: the registry's parent, i.e. the $CLIGYM_HOME `cligym generate` wrote to)."""
    registry = Registry(registry_dir)
    home = Path(home or Path(registry_dir).parent)
    tasks = [t for t in (registry.get(row["id"]) for row in registry.query()) if "gold_image" in t.metadata.extra]
    if not tasks:
        raise PackError(f"{registry_dir}: no generated tasks (with metadata.extra.gold_image) to pack")
    golds = {g.image: g for g in (load_gold(m.parent) for m in sorted((home / "gold").glob("*/gold.toml"))
                                  if not m.parent.name.startswith("pack-"))}  # an installed pack's: no probe
    previous = load_pack(out) if (Path(out) / "pack.toml").exists() else None  # the version this one replaces
    earlier = {b.id: b for b in previous.breakages} if previous else {}
    outcomes = _outcomes(home, golds)
    by_id = {task.id: task for task in tasks}
    recipes: dict[str, GoldRecipe] = {}
    wheels: dict[str, bytes] = {}
    breakages = []
    for task in tasks:
        if task.metadata.hint:
            continue
        gold = golds.get(task.metadata.extra["gold_image"])
        if gold is None and previous and _carried(task, earlier, previous):  # installed from it: packed as it was
            carried, recipe = earlier[task.id], previous.golds[earlier[task.id].project]
            if carried.project not in recipes:
                recipes[carried.project] = recipe
                wheels |= artifacts.pack_wheels(recipe, previous.path)
            _one_gold(task, recipes[carried.project], recipe.image)
            breakages.append(carried)
            continue
        if gold is None:
            raise PackError(f"task {task.id}: its gold image {task.metadata.extra['gold_image']} has no recipe under "
                            f"{home / 'gold'}; pack from the CLIGYM_HOME that generated it (--home)")
        if gold.project not in recipes:
            logger.info("pinning the gold recipe of %s==%s", gold.project, gold.version)
            recipes[gold.project], own = _recipe(gold)
            wheels |= own
        _one_gold(task, recipes[gold.project], gold.image)
        hint = by_id.get(f"{task.id}-hint")
        if hint is None:
            raise PackError(f"task {task.id}: its hint variant {task.id}-hint is not in {registry_dir}")
        made = outcomes.get(task.id) or (dict(earlier[task.id].stats) if task.id in earlier else {})
        breakages.append(_breakage(task, hint, gold, made))
    projects = sorted(recipes)
    kept = {p: entry["split"] for p, entry in previous.projects.items()} if previous else {}
    splits = {p: "heldout" if p in heldout else "train" for p in projects} if heldout else _splits(projects, kept)
    unknown = sorted(set(heldout) - set(projects))
    if unknown:
        raise PackError(f"--heldout {', '.join(unknown)}: not a project of these tasks ({', '.join(projects)})")
    rows = _run_rows(home)
    made_here = {_candidate(row) for row in rows}
    rows += [row for row in (previous.generation if previous else ()) if _candidate(row) not in made_here]
    generation = tuple({k: v for k, v in o.items() if k != "image"} for o in rows if o.get("project") in recipes)
    pack = Pack(name, version, description,
                {p: {"version": recipes[p].version, "split": splits[p]} for p in projects},
                recipes, tuple(breakages), generation)
    write_pack(pack, out, wheels)
    size = text_bytes(out)
    count = 2 * len(breakages)
    logger.info("pack %s %s: %d tasks (%d breakages), %d bytes in git: %.0f bytes per task, %.1f MB for 1,000 "
                "breakages", name, version, count, len(breakages), size, size / count,
                projected_bytes(out, len(breakages)) / 1e6)
    return replace(pack, path=Path(out))


def _splits(projects: list[str], previous: dict[str, str]) -> dict[str, str]:
    """Held out: HELDOUT_SHARE of the projects (at least one of two or more). A project keeps the split an earlier
    version of the pack gave it (a model trained on its train split must never be evaluated on it); of the new
    ones, those whose name hashes lowest top the held-out share up."""
    kept = {p: previous[p] for p in projects if p in previous}
    ranked = sorted((p for p in projects if p not in kept), key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    count = max(1, round(HELDOUT_SHARE * len(projects))) if len(projects) > 1 else 0
    count = max(0, count - sum(split == "heldout" for split in kept.values()))
    return kept | {p: "heldout" if p in ranked[:count] else "train" for p in ranked}


def _recipe(gold: GoldEnvironment) -> tuple[GoldRecipe, dict[str, bytes]]:
    """The gold's recipe with its sdist and wheels pinned; the wheels the index cannot reproduce, to ship."""
    sdist = wheelhouse.fetch_sdist(gold.project, gold.version)
    tests_dir = Path(gold.tests.directory).relative_to(PROJECT_DIR).as_posix()
    source = read_sdist(sdist, gold.project, tests_dir)
    project_files = {k.removeprefix("project/"): v for k, v in gold.environment.files.items()
                     if k.startswith("project/")}
    if source.test_files != dict(gold.tests.files) or source.root_files != project_files:
        raise PackError(f"gold {gold.project}=={gold.version}: its tests or root configs differ from those of "
                        f"{sdist.name}; the pack takes them from the sdist, so it cannot ship this gold")
    house = {k.removeprefix("wheelhouse/"): v for k, v in gold.environment.files.items() if k.startswith("wheelhouse/")}
    other = set(gold.environment.files) - {f"wheelhouse/{w}" for w in house} - {f"project/{p}" for p in project_files}
    if other:
        raise PackError(f"gold {gold.project}: build-context files {sorted(other)} are neither wheels nor sdist files")
    served = artifacts.download([Artifact(f, artifacts.sha256(d)) for f, d in house.items()])
    pinned, own = [], {}
    for filename, data in sorted(house.items()):
        same = filename in served and artifacts.sha256(served[filename].read_bytes()) == artifacts.sha256(data)
        pinned.append(Artifact(filename, artifacts.sha256(data), "index" if same else "pack"))
        if not same:
            own[filename] = data
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(gold.tests).items()
                if k not in ("files", "fail_to_pass", "pass_to_pass")}
    recipe = GoldRecipe(gold.project, gold.version, gold.image, gold.environment.dockerfile,
                        Artifact(sdist.name, artifacts.sha256(sdist.read_bytes())), tuple(pinned), tests_dir,
                        tuple(sorted(project_files)), settings, tuple(gold.passing), gold.environment.network)
    return recipe, own


def _breakage(task: Task, hint: Task, gold: GoldEnvironment, outcome: dict[str, Any]) -> Breakage:
    head = f"FROM {gold.image}\n"
    if not task.environment.dockerfile.startswith(head):
        raise PackError(f"task {task.id}: its Dockerfile does not start with {head.strip()!r}")
    if (hint.environment, hint.tests, hint.solution) != (task.environment, task.tests, task.solution):
        raise PackError(f"task {hint.id}: differs from {task.id} in more than its issue text")
    if task.tests.files != gold.tests.files:
        raise PackError(f"task {task.id}: its test files differ from its gold's; the pack cannot take them from "
                        "the sdist")
    rest = tuple(t for t in gold.passing if t not in task.tests.fail_to_pass)
    base = replace(gold.tests, fail_to_pass=(), pass_to_pass=(), files={})
    mine = replace(task.tests, fail_to_pass=(), pass_to_pass=(), files={})
    try:
        files = {k: v.decode() for k, v in task.environment.files.items()}
    except UnicodeDecodeError:
        raise PackError(f"task {task.id}: a binary build-context file cannot go into a text pack") from None
    return Breakage(
        id=task.id, project=gold.project, category=task.metadata.category, generator=task.metadata.generator,
        created_at=task.metadata.created_at, dockerfile=task.environment.dockerfile[len(head):],
        solution=task.solution, instructions={"plain": task.instruction, "hint": hint.instruction},
        difficulty={"plain": task.metadata.difficulty, "hint": hint.metadata.difficulty},
        fail_to_pass=task.tests.fail_to_pass,
        pass_to_pass=None if sorted(task.tests.pass_to_pass) == sorted(rest) else task.tests.pass_to_pass,
        files=files, tests={k: v for k, v in vars(mine).items() if getattr(base, k) != v},
        extra={k: v for k, v in task.metadata.extra.items() if k not in _FROM_GOLD},
        stats={k: outcome[k] for k in ("seconds", "image_bytes") if outcome.get(k) is not None})


def _carried(task: Task, earlier: dict[str, Breakage], previous: Pack) -> bool:
    """Was `task` installed from the pack version being replaced, on that version's gold?"""
    breakage = earlier.get(task.id)
    return breakage is not None and task.metadata.extra.get("pack") == previous.name and \
        previous.golds[breakage.project].image == task.metadata.extra["gold_image"]


def _one_gold(task: Task, recipe: GoldRecipe, image: str) -> None:
    if recipe.image != image:
        raise PackError(f"task {task.id}: built on {image}, while other tasks of {recipe.project} are built on "
                        f"{recipe.image}; a pack holds one gold per project (generate on the installed pack's gold, "
                        "or leave one of them out of the registry)")


def _candidate(row: dict[str, Any]) -> tuple[Any, ...]:
    return row.get("project"), row.get("operator"), row.get("target")


def _run_rows(home: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for log in sorted((home / "runs").glob("*.jsonl"))
            for line in log.read_text().splitlines() if line.strip()]


def _outcomes(home: Path, golds: dict[str, GoldEnvironment]) -> dict[str, dict[str, Any]]:
    """Per task id: its generation outcome, with the disk its image adds over the gold where Docker has both."""
    rows = {task_id: row for row in _run_rows(home) if row.get("status") == "accepted" for task_id in row["task_ids"]}
    try:
        from cligym_env.runtime.docker_client import connect

        client = connect()
    except Exception as error:  # noqa: BLE001 - sizes are a nicety; a pack builds without Docker
        logger.info("no Docker (%s): disk per task left out", error)
        return rows
    gold_images = {g.project: g.image for g in golds.values()}
    for row in rows.values():
        try:
            task, gold = (client.images.get(tag).attrs["Size"] for tag in (row["image"], gold_images[row["project"]]))
            row["image_bytes"] = task - gold
        except Exception:  # noqa: BLE001 - an image removed since, or a project without recipe: no size
            continue
    return rows
