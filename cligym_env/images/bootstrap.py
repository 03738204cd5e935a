"""The base images every other image is built FROM, made without any image registry.

Where a registry answers, `debian:bookworm-slim` is pulled and tagged; where none does (these machines,
air-gapped clusters), the root filesystem is made with debootstrap and imported. Both steps are cached.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import docker
from docker.errors import APIError

from cligym_env import paths
from cligym_env.images.build import build_image, image_exists
from cligym_env.error import BootstrapError

BASE_IMAGE = "cligym/base:bookworm"
# The public names the base stands for: without a registry it is tagged under them too, so a Dockerfile written
# for anywhere (an exported Harbor task, say) builds here as well. The first is what exports build FROM.
PUBLIC_BASE_NAMES = ("debian:bookworm-slim", "debian:bookworm")
PYTHON_IMAGE = "cligym/python:bookworm"
MIRROR = "http://deb.debian.org/debian"
logger = logging.getLogger(__name__)


def bootstrap(client: docker.DockerClient, *, use_registry: bool = True) -> list[str]:
    """Make sure the base and Python images exist; return their tags. Idempotent; says what it builds at INFO."""
    if not image_exists(client, BASE_IMAGE):
        if not (use_registry and _pull_base(client)):
            _debootstrap_base(client)
    _tag_public_names(client)
    python_dockerfile = resources.files("cligym_env.images").joinpath("dockerfiles/python.Dockerfile").read_text()
    if not image_exists(client, PYTHON_IMAGE):
        logger.info("building %s (apt-get inside docker build; a minute or two)", PYTHON_IMAGE)
    build_image(client, PYTHON_IMAGE, python_dockerfile, what=PYTHON_IMAGE)
    return [BASE_IMAGE, PYTHON_IMAGE]


def _tag_public_names(client: docker.DockerClient) -> None:
    """Tag the base under each public name this host lacks (never over an image pulled under that name)."""
    for name in PUBLIC_BASE_NAMES:
        if not image_exists(client, name):
            client.images.get(BASE_IMAGE).tag(*name.split(":"))


def _pull_base(client: docker.DockerClient) -> bool:
    try:
        image = client.images.pull("debian", tag="bookworm-slim")
    except APIError as error:
        logger.info("no image registry reachable (%s); building the base image with debootstrap", str(error)[:120])
        return False
    image.tag(*BASE_IMAGE.split(":"))
    return True


def _debootstrap_base(client: docker.DockerClient) -> None:
    if shutil.which("debootstrap") is None:
        raise BootstrapError("debootstrap is not installed: `apt-get install -y debootstrap` (or run scripts/setup.sh)")
    tarball = paths.cache_dir() / "bookworm-minbase.tar"
    if not tarball.exists():
        _make_rootfs_tarball(tarball)
    logger.info("importing %s as %s", tarball, BASE_IMAGE)
    # A path (not a stream): docker-py streams chunked, which dockerd 20.10 rejects for imports.
    client.api.import_image(src=str(tarball), repository=BASE_IMAGE.split(":")[0], tag="bookworm",
                            changes=['CMD ["bash"]', "ENV LANG=C.UTF-8"])
    if not image_exists(client, BASE_IMAGE):
        raise BootstrapError(f"docker import of {tarball} did not produce {BASE_IMAGE}")


def _make_rootfs_tarball(tarball: Path) -> None:
    root = tarball.with_suffix(".rootfs")
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    logger.info("debootstrap --variant=minbase bookworm into %s (about 30 s)", root)
    run = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise BootstrapError(f"debootstrap failed (exit {run.returncode}):\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    partial = tarball.with_suffix(".tar.partial")
    subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
    partial.rename(tarball)  # only a complete tarball ever carries the final name
    shutil.rmtree(root, ignore_errors=True)
