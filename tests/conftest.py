"""Shared fixtures: the real Docker daemon, the base images, and a registry of the shipped examples.

Every test session ends by checking that no cligym container is left behind.
"""

from __future__ import annotations

import os
import shutil
import socket
from importlib import resources
from pathlib import Path

import docker
import pytest

from cligym_env.images import bootstrap
from cligym_env.runtime.docker_client import connect
from cligym_env.runtime.sandbox import LABEL
from cligym_env.tasks.registry import Registry

EXAMPLES = Path(str(resources.files("cligym_env.tasks").joinpath("examples")))


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = connect()
    bootstrap(client, log=lambda line: None)
    yield client
    owner = f"cligym.owner={socket.gethostname()}:{os.getpid()}"  # other processes' containers are theirs
    leftovers = client.containers.list(all=True, filters={"label": [LABEL, owner]})
    for container in leftovers:
        container.remove(force=True)
    assert not leftovers, f"tests left cligym containers behind: {[c.name for c in leftovers]}"


@pytest.fixture(autouse=True)
def cligym_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own CLIGYM_HOME, so the user's registry and caches are never touched."""
    home = tmp_path / "cligym-home"
    monkeypatch.setenv("CLIGYM_HOME", str(home))
    return home


@pytest.fixture
def example_registry(tmp_path: Path) -> Registry:
    folder = tmp_path / "registry"
    shutil.copytree(EXAMPLES, folder)
    return Registry(folder)


@pytest.fixture(scope="session")
def python_image(docker_client: docker.DockerClient) -> str:
    return "cligym/python:bookworm"
