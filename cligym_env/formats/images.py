"""Base images across the registry boundary: our local images <-> the public names they stand for.

Export: a task's Dockerfile is made self-contained by inlining the recipe of every local image it builds FROM
(cligym/python, gold images) down to a public base, with each recipe's build context copied beside it, so the
folder builds on any Docker host. Import: a public FROM this host lacks is mapped to the local bootstrapped image
standing for it (no registry here); one with no stand-in is an `UnmappableImageError` naming the image and the fix.
"""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources
from typing import Callable, Mapping

from cligym_env.images.bootstrap import BASE_IMAGE, PUBLIC_BASE_NAMES, PYTHON_IMAGE
from cligym_env.images.recipes import find_recipe
from cligym_env.tasks.task import Environment
from cligym_env.error import ExportError, UnmappableImageError

# Public image -> the local image that stands for it where no registry answers (same Debian release and Python).
STAND_INS: dict[str, str] = {
    **{name: BASE_IMAGE for name in PUBLIC_BASE_NAMES},
    "debian:12": BASE_IMAGE, "debian:12-slim": BASE_IMAGE,
    **{f"python:3.11{flavour}": PYTHON_IMAGE for flavour in ("", "-bookworm", "-slim", "-slim-bookworm")},
}
RECIPE_DIR = "cligym-base"  # where inlined recipes' build contexts go inside the exported build context
_FROM = re.compile(r"^(\s*FROM\s+(?:--\S+\s+)*)(\S+)(.*)$", re.I)
_COPY = re.compile(r"^(\s*(?:COPY|ADD)\s+)(.*)$", re.I | re.S)


def self_contained(environment: Environment, *, what: str) -> Environment:
    """The environment with every local base recipe inlined, FROM a public image (for Harbor's environment/)."""
    dockerfile, files = environment.dockerfile, dict(environment.files)
    seen: set[str] = set()
    while True:
        base = _single_from(dockerfile, what)
        if base == BASE_IMAGE:
            return Environment(_replace_from(dockerfile, PUBLIC_BASE_NAMES[0]), files, environment.network)
        recipe = _recipe(base)
        if recipe is None:
            if base.startswith("cligym"):
                raise ExportError(f"{what}: its Dockerfile starts FROM {base}, a local image with no saved recipe "
                                  "(under $CLIGYM_HOME/gold); rebuild it with `cligym generate` to export the task")
            return Environment(dockerfile, files, environment.network)  # already a public image
        if base in seen:
            raise ExportError(f"{what}: the recipes of its base images loop at {base}")
        seen.add(base)
        parent, context = recipe
        prefix = f"{RECIPE_DIR}/{len(seen)}"
        files.update({f"{prefix}/{name}": data for name, data in context.items()})
        dockerfile = _inline(parent, dockerfile, prefix, base)


def map_public_images(dockerfile: str, exists: Callable[[str], bool], *, where: str) -> tuple[str, dict[str, str]]:
    """Rewrite each FROM this host lacks to its local stand-in; returns the Dockerfile and {public: local}."""
    mapped: dict[str, str] = {}
    stages: set[str] = set()
    lines = dockerfile.splitlines(keepends=True)
    for number, line in enumerate(lines):
        match = _FROM.match(line.rstrip("\n"))
        if not match:
            continue
        image, rest = match.group(2), match.group(3)
        alias = re.search(r"\bAS\s+(\S+)", rest, re.I)
        if image.lower() not in stages and image != "scratch" and "$" not in image and not exists(image):
            local = STAND_INS.get(image)
            if local is None:
                raise UnmappableImageError(
                    f"{where}: FROM {image}: this Docker host has no such image, no registry answers here, and "
                    f"cligym has no local stand-in for it (it maps {', '.join(sorted(STAND_INS))}). Fix: "
                    f"`docker pull {image}` where a registry answers, or build an equivalent image and "
                    f"`docker tag` it as {image}, then import again")
            mapped[image] = local
            ending = "\n" if line.endswith("\n") else ""
            lines[number] = f"{match.group(1)}{local}{rest}{ending}"
        if alias:
            stages.add(alias.group(1).lower())
    return "".join(lines), mapped


def _recipe(image: str) -> tuple[str, Mapping[str, bytes]] | None:
    if image == PYTHON_IMAGE:
        return resources.files("cligym_env.images").joinpath("dockerfiles/python.Dockerfile").read_text(), {}
    return find_recipe(image)


def _single_from(dockerfile: str, what: str) -> str:
    found = [m.group(2) for m in map(_FROM.match, dockerfile.splitlines()) if m]
    if len(found) > 1 and not any(image.startswith("cligym") or _recipe(image) for image in found):
        return found[-1]  # multi-stage, all public: already self-contained
    if len(found) != 1:
        raise ExportError(f"{what}: its Dockerfile has {len(found)} FROM lines; only single-stage ones are "
                          "inlined into a self-contained Dockerfile")
    return found[0]


def _replace_from(dockerfile: str, image: str) -> str:
    return "".join(_FROM.sub(lambda m: f"{m.group(1)}{image}{m.group(3)}", line, count=1)
                   for line in dockerfile.splitlines(keepends=True))


def _inline(parent: str, child: str, prefix: str, base: str) -> str:
    """The parent recipe (COPY sources moved under `prefix`), then the child's lines without its FROM."""
    body = [line for line in child.splitlines(keepends=True) if not _FROM.match(line.rstrip("\n"))]
    return ("".join(_prefix_copies(parent, prefix)).rstrip("\n") + f"\n# --- {base} above, inlined ---\n"
            + "".join(body))


def _prefix_copies(dockerfile: str, prefix: str) -> list[str]:
    """Instructions with COPY/ADD sources (not --from ones) moved under `prefix` of the build context."""
    out: list[str] = []
    pending = ""
    for line in dockerfile.splitlines(keepends=True):
        pending += line
        if line.rstrip("\n").endswith("\\") and not line.lstrip().startswith("#"):
            continue
        instruction, pending = pending, ""
        match = _COPY.match(instruction)
        if match and "--from" not in instruction:
            instruction = match.group(1) + _moved(match.group(2).replace("\\\n", " ").strip(), prefix) + "\n"
        out.append(instruction)
    return out + ([pending] if pending else [])


def _moved(arguments: str, prefix: str) -> str:
    if arguments.startswith("["):
        parts = json.loads(arguments)
        return json.dumps([_under(prefix, p) for p in parts[:-1]] + parts[-1:])
    words = shlex.split(arguments)
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    moved = [p if p.startswith(("http://", "https://")) else _under(prefix, p) for p in paths[:-1]]
    return " ".join(shlex.quote(w) for w in [*flags, *moved, paths[-1]])


def _under(prefix: str, path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return f"{prefix}/{'' if path == '.' else path}"
