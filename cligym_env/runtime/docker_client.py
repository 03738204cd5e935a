"""One place that connects to the Docker daemon, so every caller gets the same clear error when it is down.

Any `DOCKER_HOST` docker-py supports works (unix socket, tcp, tcp + TLS with `DOCKER_TLS_VERIFY` and
`DOCKER_CERT_PATH`, ssh). Over TLS the daemon's CA must win: `requests` would otherwise let `REQUESTS_CA_BUNDLE`
or `CURL_CA_BUNDLE` replace it (psf/requests#3829), so those clients ignore the environment's HTTP settings.
"""

from __future__ import annotations

import os

import docker
from docker.constants import MINIMUM_DOCKER_API_VERSION
from docker.errors import DockerException
from docker.utils import kwargs_from_env

from cligym_env.error import DockerUnavailableError


def connect(timeout: int = 120) -> docker.DockerClient:
    """Connect to the daemon named by `DOCKER_HOST` (default: the local socket) and check it answers."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = _client(timeout)
        client.ping()
    except DockerException as error:
        raise DockerUnavailableError(
            f"cannot reach the Docker daemon at {where}: {error}.\n"
            "Start it (on a machine without systemd: `dockerd >/var/log/dockerd.log 2>&1 &`, "
            "or run `bash scripts/setup.sh`), or point DOCKER_HOST at a running daemon "
            "(e.g. DOCKER_HOST=tcp://build-host:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)."
        ) from error
    return client


def _client(timeout: int) -> docker.DockerClient:
    settings = kwargs_from_env()
    if settings.get("tls") is None:
        return docker.from_env(timeout=timeout)
    probe = docker.DockerClient(timeout=timeout, version=MINIMUM_DOCKER_API_VERSION, **settings)  # no request yet
    probe.api.trust_env = False
    try:
        version = probe.version()["ApiVersion"]
    finally:
        probe.close()
    client = docker.DockerClient(timeout=timeout, version=version, **settings)
    client.api.trust_env = False
    return client
