"""A gold recipe on disk: gold.toml (what was built and measured), environment/ (Dockerfile and context, the
wheelhouse included) and tests/ (the hidden test files), so the image can be rebuilt on a machine that lacks it.
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from cligym_env.files import read_tree
from cligym_env.generator.types import Distribution, GoldEnvironment, GoldProbe
from cligym_env.tasks.task import Environment, Tests


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)


def save_gold(gold: GoldEnvironment, folder: Path) -> Path:
    """Write gold.toml, environment/ (Dockerfile + context, wheelhouse included) and tests/, atomically."""
    folder = Path(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=_parent(folder)))
    probe = {k: v for k, v in vars(gold.probe).items() if k != "distributions"}
    probe["distributions"] = [vars(d) for d in gold.probe.distributions]
    document: dict[str, Any] = {
        "project": gold.project, "version": gold.version, "image": gold.image, "passing": list(gold.passing),
        "environment": {"network": gold.environment.network},
        "tests": {key: value for key, value in vars(gold.tests).items() if key != "files"},
        "probe": _plain(probe)}
    (staging / "gold.toml").write_text(tomli_w.dumps(document))
    _write_tree(staging / "environment", {"Dockerfile": gold.environment.dockerfile.encode(),
                                          **gold.environment.files})
    _write_tree(staging / "tests", dict(gold.tests.files))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def load_gold(folder: Path) -> GoldEnvironment:
    folder = Path(folder)
    data = tomllib.loads((folder / "gold.toml").read_text())
    probe = dict(data["probe"])
    distributions = tuple(Distribution(d["name"], d["version"], tuple(d["top_level"]), tuple(d["files"]))
                          for d in probe.pop("distributions"))
    probe = {k: tuple(v) if isinstance(v, list) else v for k, v in probe.items()}
    return GoldEnvironment(
        data["project"], data["version"], data["image"],
        read_environment(folder, network=data["environment"]["network"]), read_tests(folder, data["tests"]),
        tuple(data["passing"]), GoldProbe(distributions=distributions, **probe))


def read_environment(folder: Path, *, network: bool) -> Environment:
    """environment/ of a recipe folder: its Dockerfile and build context."""
    context = read_tree(Path(folder) / "environment")
    return Environment(context.pop("Dockerfile").decode(), context, network=network)


def read_tests(folder: Path, fields: dict[str, Any]) -> Tests:
    """tests/ of a recipe folder, with the test settings its gold.toml holds."""
    files = read_tree(Path(folder) / "tests")
    fields = {key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()}
    if "command" in fields and "python" not in fields:  # a recipe saved before the trusted runner
        fields["runner"] = "script"
    return Tests(files=files, **fields)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, for the TOML writer."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent
