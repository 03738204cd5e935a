"""`cligym tasks import PATH`: find the tasks in a path (one folder, a folder of folders, a dataset file) and add
them to a registry. Every task is read and checked before the first is written, so a bad one adds nothing."""

from __future__ import annotations

import logging
from pathlib import Path

from cligym_env.formats import dataset, harbor, terminal_bench
from cligym_env.formats.common import ImageCheck
from cligym_env.tasks.registry import Registry
from cligym_env.tasks.task import Task
from cligym_env.error import TaskFormatError

logger = logging.getLogger(__name__)


def read_tasks(path: Path, *, exists: ImageCheck) -> list[Task]:
    """The tasks a Harbor or Terminal-Bench folder, a folder of them, or a parquet / JSONL dataset holds."""
    path = Path(path)
    if dataset.is_dataset(path):
        return [dataset.read_task(row, where, exists=exists) for where, row in dataset.read_rows(path)]
    if not path.is_dir():
        raise TaskFormatError(f"{path}: no such task folder or dataset file (.parquet, .jsonl)")
    single = _read_folder(path, exists)
    if single is not None:
        return [single]
    tasks = [task for child in sorted(path.iterdir()) if child.is_dir() and not child.name.startswith(".")
             for task in [_read_folder(child, exists)] if task is not None]
    if not tasks:
        raise TaskFormatError(f"{path}: holds no Harbor task (task.toml + instruction.md) or Terminal-Bench task "
                              "(task.yaml), itself or in its subfolders")
    return tasks


def import_tasks(path: Path, registry: Registry, *, exists: ImageCheck, overwrite: bool = False) -> list[Task]:
    tasks = read_tasks(path, exists=exists)
    seen: dict[str, str] = {}
    for task in tasks:
        if task.id in seen:
            raise TaskFormatError(f"{task.metadata.extra.get('source_path')}: task id {task.id!r} is also the id of "
                                  f"{seen[task.id]}; rename one of them")
        seen[task.id] = str(task.metadata.extra.get("source_path"))
    for task in tasks:
        registry.add(task, overwrite=overwrite)
        logger.info("imported %s (%s)", task.id, task.metadata.generator)
    return tasks


def _read_folder(folder: Path, exists: ImageCheck) -> Task | None:
    if harbor.is_task(folder):
        return harbor.read_task(folder, exists=exists)
    if terminal_bench.is_task(folder):
        return terminal_bench.read_task(folder, exists=exists)
    return None
