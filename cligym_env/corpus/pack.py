"""The pack format: a versioned set of tasks shipped as text, small enough to keep thousands of tasks in git.

    packs/<name>/pack.toml        name, version, schema, description; [projects.<name>] version and split
                 golds.jsonl      one gold recipe per project: Dockerfile, pinned sdist and wheels (sha256 each),
                                  test settings and the tests that pass in it
                 tasks.jsonl      one validated breakage per line: its Dockerfile lines, repair script, the issue
                                  text without and with a hint, fail-to-pass ids, metadata, generation stats
                 generation.jsonl every candidate the generator tried for these projects (status, reason, seconds)
                 wheels/          only wheels the index cannot serve byte for byte (the project's own, built here)

What is not copied: test files and test configs (taken from the pinned sdist, hash checked), pass-to-pass ids (the
gold's passing tests less the fail-to-pass ones, which is how the generator defines them) and the hint variant's
settings (the same breakage). Where fail-to-pass is most of the gold's passing tests (a breakage of the whole suite
of a project with thousands of parametrized cases), a line holds `fail_to_pass_except` instead: the gold's passing
tests that are *not* fail-to-pass (schema 2; schema 1 packs read as before). Lines are JSON with sorted keys,
so a rebuilt pack diffs line by line.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import tomli_w

from cligym_env.error import PackError
from cligym_env.tasks.task import SPLITS

SCHEMA = 2
READS = (1, 2)  # schemas this code reads
PACKS_DIR = Path(__file__).with_name("packs")
PACK_FILE, GOLDS_FILE, TASKS_FILE, GENERATION_FILE, WHEELS_DIR = (
    "pack.toml", "golds.jsonl", "tasks.jsonl", "generation.jsonl", "wheels")


@dataclass(frozen=True)
class Artifact:
    """A pinned file: `source` is "index" (fetched by name from the package index) or "pack" (under wheels/)."""

    filename: str
    sha256: str
    source: str = "index"


@dataclass(frozen=True)
class GoldRecipe:
    """Everything to rebuild one gold image bit for bit, less what the pinned sdist and index already hold."""

    project: str
    version: str
    image: str                      # cligym/gold-<project>:<content hash>; checked again after rebuilding
    dockerfile: str
    sdist: Artifact
    wheels: tuple[Artifact, ...]
    tests_dir: str                  # the sdist's test folder (its files are the hidden tests)
    project_files: tuple[str, ...]  # root test configs taken from the sdist into environment/project/
    tests: dict[str, Any]           # Tests settings, less files and test ids
    passing: tuple[str, ...]
    network: bool = False

    @property
    def folder_name(self) -> str:
        """Its recipe folder under $CLIGYM_HOME/gold; prefixed so it never shadows a generator's own gold folder."""
        return f"pack-{self.project}-{self.version}"


@dataclass(frozen=True)
class Breakage:
    """One validated breakage: two tasks, `id` (no hint) and `id`-hint."""

    id: str
    project: str
    category: str
    generator: str
    created_at: str
    dockerfile: str                 # the lines after `FROM <gold image>`
    solution: str
    instructions: dict[str, str]    # "plain" and "hint"
    difficulty: dict[str, str]      # the generator's label per variant
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...] | None = None  # None: the gold's passing tests less fail_to_pass
    files: dict[str, str] = field(default_factory=dict)  # build-context files (UTF-8 text); rare
    tests: dict[str, Any] = field(default_factory=dict)  # Tests settings that differ from the gold's
    extra: dict[str, Any] = field(default_factory=dict)  # metadata.extra less what the gold gives
    stats: dict[str, Any] = field(default_factory=dict)  # seconds to generate, image_bytes over the gold


@dataclass(frozen=True)
class Pack:
    name: str
    version: str
    description: str
    projects: dict[str, dict[str, str]]  # project -> {"version", "split"}
    golds: dict[str, GoldRecipe]
    breakages: tuple[Breakage, ...]
    generation: tuple[dict[str, Any], ...] = ()
    path: Path | None = None  # the folder it was read from

    def split_of(self, project: str) -> str:
        return self.projects[project]["split"]


def pack_path(name_or_path: str | Path) -> Path:
    """A shipped pack by name (cligym_env/corpus/packs/<name>) or any pack folder by path."""
    candidate = Path(name_or_path)
    if (candidate / PACK_FILE).is_file():
        return candidate
    shipped = PACKS_DIR / str(name_or_path)
    if (shipped / PACK_FILE).is_file():
        return shipped
    known = sorted(p.parent.name for p in PACKS_DIR.glob(f"*/{PACK_FILE}"))
    raise PackError(f"no task pack {str(name_or_path)!r}: not a folder with {PACK_FILE} nor a shipped pack "
                    f"(shipped: {', '.join(known) or 'none'})")


def load_pack(name_or_path: str | Path) -> Pack:
    folder = pack_path(name_or_path)
    where = folder / PACK_FILE
    try:
        head = tomllib.loads(where.read_text())
    except tomllib.TOMLDecodeError as error:
        raise PackError(f"{where}: invalid TOML: {error}") from None
    for key in ("name", "version", "schema", "projects"):
        if key not in head:
            raise PackError(f"{where}: required field `{key}` is missing")
    if head["schema"] not in READS:
        raise PackError(f"{where}: schema {head['schema']!r} is not supported by this cligym (it reads schemas "
                        f"{', '.join(map(str, READS))}); upgrade cligym_env or rebuild the pack")
    for project, entry in head["projects"].items():
        if entry.get("split") not in SPLITS:
            raise PackError(f"{where}: projects.{project}.split is {entry.get('split')!r}; use one of "
                            f"{', '.join(SPLITS)}")
    golds = {g.project: g for g in _read(folder / GOLDS_FILE, GoldRecipe)}
    breakages = tuple(_read(folder / TASKS_FILE, Breakage, lambda row: _expand(row, golds)))
    for breakage in breakages:
        if breakage.project not in golds or breakage.project not in head["projects"]:
            raise PackError(f"{folder / TASKS_FILE}: breakage {breakage.id} names project {breakage.project!r}, "
                            f"which has no gold recipe in {GOLDS_FILE} or entry in {PACK_FILE}")
    generation = tuple(json.loads(line) for line in _lines(folder / GENERATION_FILE, required=False))
    return Pack(head["name"], head["version"], head.get("description", ""), head["projects"], golds, breakages,
                generation, folder)


def write_pack(pack: Pack, folder: Path, wheels: dict[str, bytes]) -> Path:
    """Write the pack's text files (and the wheels only it can supply) into `folder`, replacing what was there."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    head = {"name": pack.name, "version": pack.version, "schema": SCHEMA, "description": pack.description,
            "projects": pack.projects}
    (folder / PACK_FILE).write_text(tomli_w.dumps(head))
    for name, records in ((GOLDS_FILE, [pack.golds[p] for p in sorted(pack.golds)]),
                          (TASKS_FILE, sorted(pack.breakages, key=lambda b: b.id)), (GENERATION_FILE, pack.generation)):
        rows = [_line(record, pack.golds) for record in records]
        (folder / name).write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    (folder / WHEELS_DIR).mkdir(exist_ok=True)
    for stale in (folder / WHEELS_DIR).glob("*.whl"):
        if stale.name not in wheels:
            stale.unlink()
    for filename, data in wheels.items():
        (folder / WHEELS_DIR / filename).write_bytes(data)
    return folder


def projected_bytes(folder: Path, breakages: int, wanted: int = 1000) -> float:
    """The pack's bytes in git at `wanted` breakages from the same projects: tasks.jsonl grows with breakages, the
    rest (gold recipes with their passing tests, the wheels only the pack supplies) with projects."""
    tasks = (Path(folder) / TASKS_FILE).stat().st_size
    return text_bytes(folder) - tasks + tasks / max(breakages, 1) * wanted


def text_bytes(folder: Path) -> int:
    """What the pack adds to git: every file under it except the report."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*")
               if p.is_file() and "report" not in p.relative_to(folder).parts and p.name != "REPORT.md")


def _lines(path: Path, required: bool = True) -> list[str]:
    if not path.is_file():
        if required:
            raise PackError(f"{path}: required pack file is missing")
        return []
    return [line for line in path.read_text().splitlines() if line.strip()]


def _line(record: Any, golds: dict[str, GoldRecipe]) -> dict[str, Any]:
    """The JSON object one record is written as: generation rows as they are, breakages compacted."""
    if isinstance(record, dict):
        return record
    return _compact(asdict(record), golds) if isinstance(record, Breakage) else asdict(record)


def _compact(row: dict[str, Any], golds: dict[str, GoldRecipe]) -> dict[str, Any]:
    """A breakage's line: fail-to-pass as the shorter of itself and its complement in the gold's passing tests."""
    passing = golds[row["project"]].passing
    failing = set(row["fail_to_pass"])
    if (row["pass_to_pass"] is None and len(failing) > len(passing) / 2 and failing <= set(passing)
            and list(row["fail_to_pass"]) == sorted(failing)):  # read back sorted, as the generator writes it
        row = dict(row)
        row["fail_to_pass_except"] = [t for t in passing if t not in failing]
        del row["fail_to_pass"]
    return row


def _expand(row: dict[str, Any], golds: dict[str, GoldRecipe]) -> dict[str, Any]:
    if "fail_to_pass_except" not in row:
        return row
    gold = golds.get(row.get("project"))
    if gold is None:
        raise PackError(f"breakage {row.get('id')}: fail_to_pass_except needs the gold recipe of project "
                        f"{row.get('project')!r}, which {GOLDS_FILE} does not have")
    row = dict(row)
    others = set(row.pop("fail_to_pass_except"))
    row["fail_to_pass"] = sorted(t for t in gold.passing if t not in others)
    return row


def _read(path: Path, kind: type, expand: Callable[[dict[str, Any]], dict[str, Any]] = lambda row: row) -> list[Any]:
    """Records of `kind` from JSONL (each row through `expand` first), naming the file, line and field when one is
    malformed."""
    names = {f.name for f in fields(kind)}
    records = []
    for number, line in enumerate(_lines(path), 1):
        try:
            row = expand(json.loads(line))
        except json.JSONDecodeError as error:
            raise PackError(f"{path}:{number}: not JSON ({error})") from None
        required = {f.name for f in fields(kind) if f.default is MISSING and f.default_factory is MISSING}
        if set(row) - names or required - set(row):
            raise PackError(f"{path}:{number}: unknown field(s) {sorted(set(row) - names)}, missing field(s) "
                            f"{sorted(required - set(row))}; a {kind.__name__} has {sorted(names)}")
        records.append(kind(**_typed(kind, row)))
    return records


def _typed(kind: type, row: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to the tuples the dataclasses hold; nested artifacts back to Artifact."""
    row = dict(row)
    if kind is GoldRecipe:
        row["sdist"] = Artifact(**row["sdist"])
        row["wheels"] = tuple(Artifact(**w) for w in row.get("wheels", ()))
        for key in ("project_files", "passing"):
            row[key] = tuple(row.get(key, ()))
    if kind is Breakage:
        row["fail_to_pass"] = tuple(row.get("fail_to_pass", ()))
        if row.get("pass_to_pass") is not None:
            row["pass_to_pass"] = tuple(row["pass_to_pass"])
    return row
