"""A folder of task folders plus an SQLite index (`index.sqlite`) for queries over thousands of tasks.

The folders are the truth; the index is derived data, synced from each folder's task.toml stamp
(mtime_ns, size, plus the folder's own mtime_ns) so hand edits and copied-in folders are picked up,
and rebuilt if it is deleted or corrupt.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from cligym_env import paths
from cligym_env.files import hidden_sibling
from cligym_env.tasks.folder import TASK_FILE, load_task, read_summary, write_task
from cligym_env.tasks.task import TASK_ID_PATTERN, Task, TaskError
from cligym_env.error import UnknownTaskError

EXAMPLES_DIR = Path(__file__).with_name("examples")
INDEX_FILE = "index.sqlite"
_SCHEMA_VERSION = 2  # 2: split
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,            -- the folder name
    toml_mtime_ns INTEGER, toml_size INTEGER, folder_mtime_ns INTEGER,
    problem TEXT,                   -- why the folder could not be indexed, else NULL
    project TEXT, category TEXT, difficulty TEXT, generator TEXT, split TEXT, hint INTEGER,
    summary TEXT                    -- Task.summary() as JSON
);
CREATE INDEX IF NOT EXISTS tasks_category ON tasks (category);
CREATE INDEX IF NOT EXISTS tasks_project ON tasks (project);
"""
_WRITERS = 4
_FILTERS = ("category", "project", "difficulty", "generator", "split", "hint")

Stamp = tuple[int | None, int | None, int]


class Registry:
    """Task folders under `path`, queried through the index and read or written through `folder.py`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._index = self.path / INDEX_FILE

    @classmethod
    def default(cls) -> Registry:
        """The user's registry; on first use it is filled with the shipped example tasks."""
        registry = cls(paths.registry_dir())
        if not registry._scan():
            registry.install_examples()
        return registry

    def install_examples(self) -> list[str]:
        """Add the shipped examples that are not here yet; returns the ids added."""
        folders = sorted(p for p in EXAMPLES_DIR.iterdir() if p.is_dir()) if EXAMPLES_DIR.is_dir() else []
        examples = [load_task(folder) for folder in folders if not folder.name.startswith((".", "_"))]
        added = []
        for task in examples:
            with contextlib.suppress(FileExistsError):  # another process installed it meanwhile
                self.add(task)
                added.append(task.id)
        return added

    def add(self, task: Task, overwrite: bool = False) -> Path:
        return self.add_many([task], overwrite=overwrite)[0]

    def add_many(self, tasks: Sequence[Task], *, overwrite: bool = False,
                 on_added: Callable[[str], None] = lambda task_id: None) -> list[Path]:
        """`add` for many tasks: the folders written by a few threads (the time goes to creating their files, in
        the kernel), the index updated in one transaction."""
        with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
            folders = []
            for task, folder in zip(tasks, pool.map(lambda task: write_task(task, self.path, overwrite=overwrite),
                                                    tasks)):
                folders.append(folder)
                on_added(task.id)
        rows = [self._row(task.id, self._stamp(folder), task.summary(), None) for task, folder in zip(tasks, folders)]
        with self._transaction() as db:
            self._upsert(db, rows)
        return folders

    def get(self, task_id: str) -> Task:
        if task_id not in self:
            raise self._unknown(task_id)
        return load_task(self.path / task_id)

    def remove(self, task_id: str) -> None:
        """Delete a task folder, malformed ones too; it is moved aside first so no reader sees half a task."""
        if not (TASK_ID_PATTERN.match(task_id) and (self.path / task_id).is_dir()):
            raise self._unknown(task_id)
        doomed = hidden_sibling(self.path / task_id, "removing")
        os.rename(self.path / task_id, doomed)
        with self._transaction() as db:
            db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        shutil.rmtree(doomed)

    def __contains__(self, task_id: object) -> bool:
        """Whether a task folder exists (cheap: no index sync); `get` may still find it malformed."""
        return (
            isinstance(task_id, str)
            and bool(TASK_ID_PATTERN.match(task_id))
            and (self.path / task_id / TASK_FILE).is_file()
        )

    def __len__(self) -> int:
        self.refresh()
        with self._connect() as db:
            return db.execute("SELECT count(*) FROM tasks WHERE problem IS NULL").fetchone()[0]

    def ids(self) -> list[str]:
        self.refresh()
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT id FROM tasks WHERE problem IS NULL ORDER BY id")]

    def query(
        self,
        *,
        category: str | None = None,
        project: str | None = None,
        difficulty: str | None = None,
        id_prefix: str | None = None,
        generator: str | None = None,
        split: str | None = None,
        hint: bool | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Summaries of the valid tasks matching every given filter, sorted by id."""
        self.refresh()
        values = dict(category=category, project=project, difficulty=difficulty, generator=generator, split=split,
                      hint=hint)
        where, parameters = ["problem IS NULL"], []
        for name in _FILTERS:
            if values[name] is not None:
                where.append(f"{name} = ?")
                parameters.append(int(values[name]) if name == "hint" else values[name])
        if id_prefix:
            where.append("substr(id, 1, ?) = ?")
            parameters += [len(id_prefix), id_prefix]
        sql = f"SELECT summary FROM tasks WHERE {' AND '.join(where)} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(int(limit))
        with self._connect() as db:
            return [json.loads(row[0]) for row in db.execute(sql, parameters)]

    def problems(self) -> list[tuple[Path, str]]:
        """Task folders that could not be indexed, and why; they are left out of every query."""
        self.refresh()
        with self._connect() as db:
            rows = db.execute("SELECT id, problem FROM tasks WHERE problem IS NOT NULL ORDER BY id").fetchall()
        return [(self.path / name, problem) for name, problem in rows]

    def refresh(self) -> None:
        """Sync the index with the folders, parsing only the task.toml files whose stamp changed."""
        stamps = self._scan()
        with self._connect() as db:
            known = {row[0]: tuple(row[1:]) for row in db.execute(
                "SELECT id, toml_mtime_ns, toml_size, folder_mtime_ns FROM tasks")}
        rows = [self._parse(name, stamp) for name, stamp in stamps.items() if known.get(name) != stamp]
        gone = [name for name in known.keys() - stamps.keys() if not (self.path / name).is_dir()]
        if not rows and not gone:
            return
        with self._transaction() as db:
            db.executemany("DELETE FROM tasks WHERE id = ?", [(name,) for name in gone])
            self._upsert(db, rows)

    def _scan(self) -> dict[str, Stamp]:
        """Stamp every task folder (hidden ones are temporary writes and removals in progress)."""
        with os.scandir(self.path) as entries:
            folders = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
        stamps = {}
        for folder in folders:
            with contextlib.suppress(FileNotFoundError):  # removed while scanning
                stamps[folder.name] = self._stamp(folder)
        return stamps

    @staticmethod
    def _stamp(folder: Path) -> Stamp:
        try:
            toml = os.stat(folder / TASK_FILE)
        except FileNotFoundError:
            return None, None, os.stat(folder).st_mtime_ns
        return toml.st_mtime_ns, toml.st_size, os.stat(folder).st_mtime_ns

    def _parse(self, name: str, stamp: Stamp) -> tuple[Any, ...]:
        try:
            return self._row(name, stamp, read_summary(self.path / name), None)
        except (TaskError, OSError) as error:
            return self._row(name, stamp, None, str(error))

    @staticmethod
    def _row(name: str, stamp: Stamp, summary: dict[str, Any] | None, problem: str | None) -> tuple[Any, ...]:
        if summary is None:
            return (name, *stamp, problem, None, None, None, None, None, None, None)
        filters = [summary[key] for key in ("project", "category", "difficulty", "generator", "split")]
        return (name, *stamp, problem, *filters, int(summary["hint"]), json.dumps(summary))

    @staticmethod
    def _upsert(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            db.executemany(f"INSERT OR REPLACE INTO tasks VALUES ({', '.join('?' * len(rows[0]))})", rows)

    def _unknown(self, task_id: str) -> UnknownTaskError:
        close = difflib.get_close_matches(task_id, self.ids(), n=3, cutoff=0.6)
        suggestion = f" Did you mean {', '.join(close)}?" if close else ""
        return UnknownTaskError(
            f"unknown task id {task_id!r} in {self.path}.{suggestion} List the tasks with `cligym tasks list`."
        )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection per operation, so a deleted or corrupt index is noticed and rebuilt."""
        try:
            db = self._open()
        except sqlite3.DatabaseError:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self._index}{suffix}")
            db = self._open()
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front so concurrent writers queue instead of failing."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._index, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                db.execute("BEGIN IMMEDIATE")
                if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                    db.execute("DROP TABLE IF EXISTS tasks")
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db
