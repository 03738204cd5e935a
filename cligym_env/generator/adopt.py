"""Generate on the gold environment of an installed pack: the same image, probed here, so new breakages of a project
pack together with the pack's own (a pack has one gold per project, and a gold rebuilt from its sdist on another
host differs: wheels built there are not byte-reproducible).

`cligym tasks install` writes each gold recipe to $CLIGYM_HOME/gold/pack-<project>-<version>/ (image tag, build
context, hidden tests, test settings, passing tests); what it lacks is the probe, which the operators need.
"""

from __future__ import annotations

import io
import logging
import tomllib
from pathlib import Path

import docker
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from cligym_env import paths
from cligym_env.error import GoldError
from cligym_env.generator import wheelhouse
from cligym_env.generator.probe import probe_gold
from cligym_env.generator.recipe import read_environment, read_tests
from cligym_env.generator.types import GoldEnvironment
from cligym_env.images.build import build_image
from cligym_env.runtime.sandbox import Sandbox

logger = logging.getLogger(__name__)


def installed_pack_gold(name: str, version: str | None = None) -> tuple[str, Path] | None:
    """(version, recipe folder) of the gold an installed pack holds for `name` (at `version`, or its newest)."""
    found = {}
    for manifest in (paths.home() / "gold").glob("pack-*/gold.toml"):
        try:
            data = tomllib.loads(manifest.read_text())
            if canonicalize_name(data["project"]) == canonicalize_name(name) and \
                    (version is None or data["version"] == version):
                found[Version(data["version"])] = (data["version"], manifest.parent)
        except (OSError, KeyError, ValueError):  # a half-written or foreign folder: not a pack's gold
            continue
    return found[max(found)] if found else None


def adopt(folder: Path, module: str | None, *, client: docker.DockerClient) -> GoldEnvironment:
    """The installed gold of `folder` as a generator's gold: its image built (same tag) and probed."""
    data = tomllib.loads((folder / "gold.toml").read_text())
    if "passing" not in data or "tests" not in data:
        raise GoldError(f"{folder}: installed by an older cligym, without test settings; install the pack again "
                        f"(`cligym tasks install <pack> --project {data.get('project', '...')}`)")
    project, version, image = data["project"], data["version"], data["image"]
    environment = read_environment(folder, network=bool(data.get("network", False)))
    tests = read_tests(folder, data["tests"])
    build_image(client, image, environment.dockerfile, environment.files,
                what=f"gold image of {project}=={version}")
    logger.info("%s==%s: generating on the gold of an installed pack (%s)", project, version, image)
    with Sandbox(image, task_id="gold", client=client) as sandbox:
        probe = probe_gold(sandbox, tests, module or _top_module(project, environment.files))
    return GoldEnvironment(project, version, image, environment, tests, tuple(data["passing"]), probe)


def _top_module(project: str, context: dict[str, bytes]) -> str:
    """The project's import name, from its own wheel in the wheelhouse."""
    for name, data in context.items():
        if name.startswith("wheelhouse/") and name.endswith(".whl") and \
                parse_wheel_filename(name.split("/")[-1])[0] == canonicalize_name(project):
            return wheelhouse.closest_module(project, wheelhouse.wheel_metadata(io.BytesIO(data))[1])
    return wheelhouse.closest_module(project, ())
