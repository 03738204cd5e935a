"""Pinned artifacts of a pack: the sdist and wheels of each gold recipe, fetched on the host and hash checked.

A gold image's tag is the hash of its build context, so only byte-identical wheels rebuild the image its tasks
were verified against: every file is compared with the sha256 the pack records, and a mismatch is refused.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import parse_wheel_filename

from cligym_env import paths
from cligym_env.corpus.pack import WHEELS_DIR, Artifact, GoldRecipe
from cligym_env.error import PackIntegrityError, WheelhouseError
from cligym_env.generator import index, wheelhouse

logger = logging.getLogger(__name__)
_TARGET = ["--only-binary", ":all:", "--no-deps", "--python-version", wheelhouse.PYTHON_VERSION,
           "--implementation", "cp", "--abi", wheelhouse.ABI,
           *(f"--platform={p}" for p in wheelhouse.PLATFORMS)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(artifact: Artifact, data: bytes, what: str) -> bytes:
    """`data` if its hash is the pinned one, else PackIntegrityError naming both hashes."""
    found = sha256(data)
    if found != artifact.sha256:
        raise PackIntegrityError(f"{what}: {artifact.filename} has sha256 {found}, but the pack pins "
                                 f"{artifact.sha256}; refusing it (a changed file would build a different image "
                                 "than the one its tasks were verified against)")
    return data


def fetch_sdist(recipe: GoldRecipe) -> Path:
    """The recipe's sdist from the index (cached), checked against its pinned hash."""
    path = wheelhouse.fetch_sdist(recipe.project, recipe.version)
    if path.name != recipe.sdist.filename:
        raise PackIntegrityError(f"{recipe.project}=={recipe.version}: the index serves sdist {path.name}, the pack "
                                 f"pins {recipe.sdist.filename}")
    verified(recipe.sdist, path.read_bytes(), f"sdist of {recipe.project}=={recipe.version}")
    return path


def pack_wheels(recipe: GoldRecipe, pack_folder: Path) -> dict[str, bytes]:
    """The wheels of the recipe that only the pack supplies (under wheels/), each hash checked."""
    what = f"wheelhouse of {recipe.project}=={recipe.version}"
    wheels = {}
    for artifact in (w for w in recipe.wheels if w.source == "pack"):
        path = Path(pack_folder) / WHEELS_DIR / artifact.filename
        if not path.is_file():
            raise PackIntegrityError(f"{what}: {path} is missing from the pack")
        wheels[artifact.filename] = verified(artifact, path.read_bytes(), what)
    return wheels


def fetch_wheels(recipe: GoldRecipe, pack_folder: Path) -> dict[str, bytes]:
    """Every wheel of the recipe's wheelhouse, by filename, each hash checked."""
    what = f"wheelhouse of {recipe.project}=={recipe.version}"
    wheels = pack_wheels(recipe, pack_folder)  # the cheap checks first
    pinned = [w for w in recipe.wheels if w.source == "index"]
    found = download(pinned)
    for artifact in pinned:
        if artifact.filename not in found:
            raise PackIntegrityError(f"{what}: the package index does not serve {artifact.filename} (pinned by "
                                     "the pack); without it the gold image cannot be rebuilt")
        wheels[artifact.filename] = verified(artifact, found[artifact.filename].read_bytes(), what)
    return dict(sorted(wheels.items()))


def download(wheels: list[Artifact]) -> dict[str, Path]:
    """Fetch wheels by name and version for the images' platform into a cache; filename -> path of what came."""
    cache = paths.cache_dir() / "pack-wheels"
    cache.mkdir(parents=True, exist_ok=True)
    missing = [w for w in wheels if not (cache / w.filename).is_file()]
    for wheel in missing:  # straight from the index's JSON pages, each checked against its hash
        index.fetch(parse_wheel_filename(wheel.filename)[0], wheel.filename, cache)
    wanted = [w for w in missing if not (cache / w.filename).is_file()]
    if wanted:  # what the index's JSON pages could not give: ask pip
        pins = [_pin(w.filename) for w in wanted]
        if _pip_download(pins, cache).returncode != 0:  # find which pins the index lacks, keep the rest
            for pin in pins:
                _pip_download([pin], cache)
    return {w.filename: cache / w.filename for w in wheels if (cache / w.filename).is_file()}


def _pin(filename: str) -> str:
    name, version, _, _ = parse_wheel_filename(filename)
    return f"{name}=={version}"


def _pip_download(pins: list[str], dest: Path) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(dir=wheelhouse.scratch_dir()) as scratch:
        command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", *_TARGET,
                   "--dest", scratch, *pins]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise WheelhouseError(f"pip download {' '.join(pins)} took over 600 s") from None
        if run.returncode != 0:
            logger.info("pip download %s failed: %s", " ".join(pins), run.stderr.strip()[-400:])
        for path in Path(scratch).glob("*.whl"):
            shutil.move(path, dest / path.name)
        return run
