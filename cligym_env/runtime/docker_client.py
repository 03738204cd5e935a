"""One place that connects to the Docker daemon, so every caller gets the same clear error when it is down."""

from __future__ import annotations

import os

import docker
from docker.errors import DockerException
from cligym_env.error import DockerUnavailableError


def connect(timeout: int = 120) -> docker.DockerClient:
    """Connect to the daemon named by `DOCKER_HOST` (default: the local socket) and check it answers."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as error:
        raise DockerUnavailableError(
            f"cannot reach the Docker daemon at {where}: {error}.\n"
            "Start it (on a machine without systemd: `dockerd >/var/log/dockerd.log 2>&1 &`, "
            "or run `bash scripts/setup.sh`), or point DOCKER_HOST at a running daemon "
            "(e.g. DOCKER_HOST=tcp://build-host:2375)."
        ) from error
    return client
