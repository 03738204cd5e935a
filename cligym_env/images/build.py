"""Build images from Dockerfile text and in-memory context files, cached by content hash.

The tag is derived from what goes into the build, so a task never builds twice and two tasks with the
same environment share one image; no registry is needed.
"""

from __future__ import annotations

import io
import logging
import re
import tarfile
from typing import Callable, Mapping

import docker
from docker.errors import BuildError, ImageNotFound

from cligym_env.images.recipes import find_recipe
from cligym_env.tasks.task import Environment
from cligym_env.error import ImageBuildError

logger = logging.getLogger(__name__)


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except ImageNotFound:
        return False


def base_images(dockerfile: str) -> list[str]:
    """The images a Dockerfile builds FROM (`scratch` excluded)."""
    found = re.findall(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", dockerfile, flags=re.M | re.I)
    return [base for base in found if base != "scratch"]


def environment_tag(environment: Environment, repository: str = "cligym/env") -> str:
    return f"{repository}:{environment.content_hash()[:24]}"


def build_image(client: docker.DockerClient, tag: str, dockerfile: str, files: Mapping[str, bytes] = {},
                *, what: str = "image", on_line: Callable[[str], None] = lambda line: None) -> str:
    """Build `tag` unless it exists. `what` names the thing being built in errors (e.g. 'task click-x'); the
    build's output is logged at DEBUG level (`--verbose` on the command line), and each line goes to `on_line`
    (a progress display's note)."""
    if image_exists(client, tag):
        return tag
    for base in base_images(dockerfile):
        if image_exists(client, base):
            continue
        recipe = find_recipe(base)
        if recipe:  # e.g. a gold image: rebuilt from the recipe saved beside the registry
            build_image(client, base, *recipe, what=f"{base} (from its saved recipe)", on_line=on_line)
        else:
            raise ImageBuildError(
                f"{what}: its Dockerfile starts FROM {base}, which is not on this Docker host and no registry is "
                "reachable, nor is a recipe for it saved under $CLIGYM_HOME/gold. Build it first (`cligym images "
                "bootstrap` for cligym/base and cligym/python; `cligym generate` for gold images).")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, data in {**files, "Dockerfile": dockerfile.encode()}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            archive.addfile(info, io.BytesIO(data))
    context.seek(0)
    lines: list[str] = []
    logger.info("building %s (%s)", what, tag)
    try:
        for chunk in client.api.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
                                      decode=True, labels={"cligym.managed-image": "1"}):
            line = (chunk.get("stream") or chunk.get("status") or "").rstrip()
            if line.strip():
                lines.append(line)
                logger.debug("%s: %s", what, line)
                on_line(line)
            if "error" in chunk:
                raise BuildError(chunk["error"], lines)
    except BuildError as error:
        tail = "\n".join(lines[-25:])
        raise ImageBuildError(f"{what}: docker build failed: {error.msg}\n--- last build output ---\n{tail}") from None
    return tag


def build_environment(client: docker.DockerClient, environment: Environment, *, what: str = "environment",
                      on_line: Callable[[str], None] = lambda line: None) -> str:
    return build_image(client, environment_tag(environment), environment.dockerfile, dict(environment.files),
                       what=what, on_line=on_line)
