"""Saved image recipes: how to rebuild an image a task is built FROM when this Docker host lacks it.

The generator saves each gold environment as `$CLIGYM_HOME/gold/<project>-<version>/` with `gold.toml`
(naming its `image` tag) and `environment/` (Dockerfile and build context). Copying `$CLIGYM_HOME` to another
machine therefore carries everything its tasks need; no registry is involved.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from cligym_env import paths


def find_recipe(tag: str, root: Path | None = None) -> tuple[str, dict[str, bytes]] | None:
    """(Dockerfile, context files) of the saved recipe that builds `tag`, or None."""
    for manifest in sorted((root or paths.home() / "gold").glob("*/gold.toml")):
        try:
            if tomllib.loads(manifest.read_text()).get("image") != tag:
                continue
        except (OSError, tomllib.TOMLDecodeError):
            continue
        context = manifest.parent / "environment"
        files = {str(p.relative_to(context)): p.read_bytes() for p in sorted(context.rglob("*")) if p.is_file()}
        return files.pop("Dockerfile").decode(), files
    return None
