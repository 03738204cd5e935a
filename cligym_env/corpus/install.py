"""Install a pack into a registry: task folders written on the host, no Docker; images are built on first reset.

Per gold project the pinned sdist (its tests) and wheels are fetched and hash checked, and the gold recipe is
written to $CLIGYM_HOME/gold/pack-<project>-<version>/. That is the folder `images.recipes.find_recipe` reads
when a task image's FROM gold image is missing, so the gold image is rebuilt lazily by the same mechanism as a
generated registry's, with the same content hash (checked here) and therefore the same tag.
"""

from __future__ import annotations

import logging
import shutil
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import tomli_w

from cligym_env import paths
from cligym_env.corpus import artifacts
from cligym_env.corpus.pack import SPLITS, Breakage, GoldRecipe, Pack, load_pack
from cligym_env.error import PackFilterError, PackIntegrityError
from cligym_env.generator.source import read_sdist
from cligym_env.tasks.registry import Registry
from cligym_env.tasks.task import CATEGORIES, Environment, Metadata, Task, Tests

logger = logging.getLogger(__name__)
FETCHERS = 8  # gold recipes made whole at once


@dataclass(frozen=True)
class Gold:
    """A gold recipe made whole on this host: its build context and its hidden tests."""

    recipe: GoldRecipe
    environment: Environment
    tests: Tests


def select(pack: Pack, *, projects: Sequence[str] = (), category: str | None = None, split: str | None = None,
           limit: int | None = None) -> list[Breakage]:
    """The pack's breakages matching every filter, in id order; a filter value the pack lacks is an error."""
    for project in projects:
        if project not in pack.projects:
            raise PackFilterError(f"--project {project!r}: pack {pack.name} has no such project; choose from "
                                  f"{', '.join(sorted(pack.projects))}")
    if category is not None and category not in CATEGORIES:
        raise PackFilterError(f"--category {category!r}: not a category; choose from {', '.join(CATEGORIES)}")
    if split is not None and split not in SPLITS:
        raise PackFilterError(f"--split {split!r}: choose train or heldout")
    if limit is not None and limit < 1:
        raise PackFilterError(f"--limit {limit}: must be at least 1")
    chosen = [b for b in sorted(pack.breakages, key=lambda b: b.id)
              if (not projects or b.project in projects) and (category is None or b.category == category)
              and (split is None or pack.split_of(b.project) == split)]
    if not chosen:
        raise PackFilterError(f"pack {pack.name} has no task with project={list(projects) or 'any'}, "
                              f"category={category or 'any'}, split={split or 'any'}")
    return chosen[:(limit + 1) // 2] if limit else chosen  # two tasks per breakage


def install(pack: str | Path | Pack, registry: Registry, *, projects: Sequence[str] = (),
            category: str | None = None, split: str | None = None, limit: int | None = None,
            on_task: Callable[[str], None] = lambda task_id: None) -> list[str]:
    """Write the selected tasks into `registry` (replacing same-id tasks); return their ids."""
    pack = pack if isinstance(pack, Pack) else load_pack(pack)
    chosen = select(pack, projects=projects, category=category, split=split, limit=limit)
    projects = sorted({b.project for b in chosen})
    with ThreadPoolExecutor(max_workers=FETCHERS) as pool:  # the downloads wait on the network, not the CPU
        golds = dict(zip(projects, pool.map(lambda p: materialize(pack, pack.golds[p]), projects)))
    tasks = [task for breakage in chosen for task in tasks_of(pack, breakage, golds[breakage.project])][:limit]
    registry.add_many(tasks, overwrite=True, on_added=on_task)
    ids = [task.id for task in tasks]
    logger.info("installed %d tasks of pack %s %s into %s", len(ids), pack.name, pack.version, registry.path)
    return ids


def materialize(pack: Pack, recipe: GoldRecipe, root: Path | None = None) -> Gold:
    """Fetch and check the recipe's artifacts and write its recipe folder (unless an identical one is there)."""
    what = f"gold {recipe.project}=={recipe.version} of pack {pack.name}"
    source = read_sdist(artifacts.fetch_sdist(recipe), recipe.project, recipe.tests_dir)
    if sorted(source.root_files) != sorted(recipe.project_files):
        raise PackIntegrityError(f"{what}: the sdist's root configs are {sorted(source.root_files)}, the pack "
                                 f"expects {list(recipe.project_files)}")
    folder = (root or paths.home() / "gold") / recipe.folder_name
    context = {f"project/{name}": data for name, data in source.root_files.items()}
    if _installed(folder, recipe):
        house = sorted((folder / "environment" / "wheelhouse").glob("*"))
        context |= {f"wheelhouse/{p.name}": p.read_bytes() for p in house}
    else:
        context |= {f"wheelhouse/{name}": data for name, data in artifacts.fetch_wheels(recipe, pack.path).items()}
    environment = Environment(recipe.dockerfile, context, network=recipe.network)
    tag = f"{recipe.image.split(':')[0]}:{environment.content_hash()[:24]}"
    if tag != recipe.image:
        raise PackIntegrityError(f"{what}: the rebuilt recipe hashes to {tag}, not the pinned {recipe.image}"
                                 + (f" (its files in {folder} changed: remove that folder)" if folder.exists() else ""))
    if not _installed(folder, recipe):
        _write_recipe(folder, recipe, environment, source.test_files)
    tests = Tests(files=source.test_files, **{k: tuple(v) if isinstance(v, list) else v
                                              for k, v in recipe.tests.items()})
    return Gold(recipe, environment, tests)


def tasks_of(pack: Pack, breakage: Breakage, gold: Gold) -> list[Task]:
    """The no-hint and hint tasks of a breakage, exactly as the generator wrote them, plus the pack's name."""
    passing = gold.recipe.passing
    pass_to_pass = breakage.pass_to_pass if breakage.pass_to_pass is not None else tuple(
        t for t in passing if t not in breakage.fail_to_pass)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in breakage.tests.items()}
    tests = replace(gold.tests, fail_to_pass=breakage.fail_to_pass, pass_to_pass=pass_to_pass, **overrides)
    environment = Environment(f"FROM {gold.recipe.image}\n{breakage.dockerfile}",
                              {k: v.encode() for k, v in breakage.files.items()}, gold.recipe.network)
    extra = {**breakage.extra, "gold_image": gold.recipe.image, "project_version": gold.recipe.version,
             "pack": pack.name, "pack_version": pack.version, "split": pack.split_of(breakage.project)}
    return [Task(id=breakage.id + ("-hint" if hint else ""), instruction=breakage.instructions[variant],
                 environment=environment, tests=tests, solution=breakage.solution,
                 metadata=Metadata(project=breakage.project, category=breakage.category,
                                   difficulty=breakage.difficulty[variant], hint=hint, generator=breakage.generator,
                                   created_at=breakage.created_at, extra=extra))
            for hint, variant in ((False, "plain"), (True, "hint"))]


def _installed(folder: Path, recipe: GoldRecipe) -> bool:
    """A recipe folder already written for this exact image (wheels checked when it was written)."""
    try:
        return tomllib.loads((folder / "gold.toml").read_text()).get("image") == recipe.image
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _write_recipe(folder: Path, recipe: GoldRecipe, environment: Environment, tests: dict[str, bytes]) -> None:
    """gold.toml (image tag, pins) + environment/ + tests/: the layout `images.recipes.find_recipe` reads.

    gold.toml is written last, so a folder is only ever found once it is complete."""
    shutil.rmtree(folder, ignore_errors=True)  # a half-written folder of an interrupted install
    for relative, data in {"environment/Dockerfile": environment.dockerfile.encode(),
                           **{f"environment/{k}": v for k, v in environment.files.items()},
                           **{f"tests/{k}": v for k, v in tests.items()}}.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    document = {"project": recipe.project, "version": recipe.version, "image": recipe.image, "from_pack": True,
                "sdist": vars(recipe.sdist), "wheels": [vars(w) for w in recipe.wheels],
                # what `cligym generate` needs to generate on this very gold (generator/adopt.py)
                "tests": recipe.tests, "passing": list(recipe.passing), "network": recipe.network}
    (folder / "gold.toml").write_text(tomli_w.dumps(document))
