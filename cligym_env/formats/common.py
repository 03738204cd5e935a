"""What the readers of foreign task formats share: ids, categories, files, solutions and base images as `Task` parts.

Each reader takes an `ImageCheck` (does this Docker host have an image?) so public base images it lacks are
mapped to local stand-ins (`images.map_public_images`), and every malformed input raises `TaskFormatError`
naming the file and the field.
"""

from __future__ import annotations

import base64
import logging
import re
import shlex
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from cligym_env.formats.images import map_public_images
from cligym_env.tasks.task import CATEGORIES, Environment, Metadata
from cligym_env.error import TaskFormatError, UsageError

logger = logging.getLogger(__name__)

ImageCheck = Callable[[str], bool]
NO_ORACLE = "no_oracle"  # metadata.extra flag of a task imported without a solution (like the paper's tasks)
_ALIASES = {"filesystem": "file-system", "dependencies": "dependencies-runtime", "dependency": "dependencies-runtime",
            "runtime": "dependencies-runtime", "network": "network-security", "security": "network-security",
            "logic": "source-logic"}


def task_id(name: str, where: str) -> str:
    """A cligym task id from a foreign name: lower case, other characters as '-'."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-._")[:128]
    if not cleaned:
        raise TaskFormatError(f"{where}: the task name {name!r} gives no usable id; name the task with letters "
                              "or digits")
    return cleaned


def metadata(fields: Mapping[str, Any], *, source: str, oracle: bool, where: str) -> Metadata:
    """Our metadata from a foreign one (Harbor's [metadata], Terminal-Bench's task.yaml, a dataset row)."""
    raw = str(fields.get("category") or "other")
    key = re.sub(r"[^a-z]+", "-", raw.lower().replace("&", " ")).strip("-")
    category = key if key in CATEGORIES else _ALIASES.get(key, "other")
    difficulty = fields.get("difficulty") or "medium"
    extra: dict[str, Any] = {"source": source, "source_path": where}
    if category != key:
        extra["category"] = raw
    tags = fields.get("tags")
    if isinstance(tags, list):
        extra["tags"] = [str(tag) for tag in tags]
    for name in ("author_name", "author_email", "expert_time_estimate_min", "junior_time_estimate_min",
                 "max_agent_timeout_sec"):
        if isinstance(fields.get(name), (str, int, float)) and not isinstance(fields.get(name), bool):
            extra[name] = fields[name]
    if not oracle:
        extra[NO_ORACLE] = True
    return Metadata(project=str(fields.get("project") or source), category=category, difficulty=str(difficulty),
                    generator=f"{source}-import" + ("" if oracle else "-no-oracle"), extra=extra)


def environment(dockerfile: str, files: Mapping[str, bytes], *, network: bool, exists: ImageCheck,
                where: str) -> Environment:
    """The task's environment, each public FROM this host lacks mapped to its local stand-in."""
    mapped_dockerfile, mapped = map_public_images(dockerfile, exists, where=where)
    for public, local in mapped.items():
        logger.info("%s: FROM %s is built FROM the local %s (no registry here)", where, public, local)
    return Environment(mapped_dockerfile, dict(files), network=network)


def pyarrow():  # type: ignore[no-untyped-def]
    """pyarrow (parquet), which comes with the `train` extra's `datasets`."""
    try:
        import pyarrow.parquet

        return pyarrow
    except ImportError:
        raise UsageError("parquet needs pyarrow: `pip install 'cligym_env[train]'` (or `pip install pyarrow`); "
                         "JSONL files need nothing more") from None


def read_text(path: Path, purpose: str) -> str:
    if not path.is_file():
        raise TaskFormatError(f"{path}: required file is missing ({purpose}); create it")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise TaskFormatError(f"{path}: not valid UTF-8 text ({error}); save it as UTF-8") from None


def load_yaml(text: str, where: str) -> dict[str, Any]:
    """A YAML mapping, or a `TaskFormatError` naming the line (as malformed `instruction: |` blocks give)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise TaskFormatError(f"{where}: invalid YAML{place}: {problem}; check the indentation of block "
                              "scalars such as `instruction: |` (every line indented past the key)") from None
    if not isinstance(document, dict):
        raise TaskFormatError(f"{where}: expected a YAML mapping of fields, found {type(document).__name__}")
    return document


def yaml_instruction(fields: Mapping[str, Any]) -> Any:
    """task.yaml's `instruction`, or the `base` entry of the older `descriptions` list (early Terminal-Bench)."""
    if "instruction" in fields or not isinstance(fields.get("descriptions"), list):
        return fields.get("instruction")
    return next((entry.get("description") for entry in fields["descriptions"]
                 if isinstance(entry, dict) and entry.get("key") == "base"), None)


def instruction(value: Any, where: str, field: str = "instruction") -> str:
    if not isinstance(value, str) or not value.strip():
        found = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        raise TaskFormatError(f"{where}: field `{field}` must be non-empty text (found {found}); write it as a "
                              f"block scalar: `{field}: |` followed by the text indented by two spaces")
    return value


def bundled_solution(files: Mapping[str, bytes], entry: str, mount: str) -> str:
    """A solution with helper files as one script: write them under `mount`, then run `entry` from there."""
    if set(files) == {entry}:
        return files[entry].decode("utf-8")
    lines = ["#!/bin/bash", "set -e", f"rm -rf {mount} && mkdir -p {mount}"]
    for name, data in sorted(files.items()):
        target = shlex.quote(f"{mount}/{name}")
        lines += [f"mkdir -p \"$(dirname {target})\"",
                  f"base64 -d > {target} <<'CLIGYM_FILE_EOF'", base64.encodebytes(data).decode().rstrip(),
                  "CLIGYM_FILE_EOF"]
    lines += [f"cd {mount}", f"bash {shlex.quote(f'{mount}/{entry}')}"]
    return "\n".join(lines) + "\n"
