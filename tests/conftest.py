"""Shared fixtures: the real Docker daemon, the base images, and a registry of the shipped examples.

Every test session ends by checking that no cligym container is left behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Iterator

import docker
import pytest

from cligym_env.generator.types import GoldEnvironment, GoldProbe
from cligym_env.images import bootstrap, build_environment
from cligym_env.runtime.docker_client import connect
from cligym_env.runtime.sandbox import LABEL
from cligym_env.tasks import Environment, Registry, load_task

EXAMPLES = Path(str(resources.files("cligym_env.tasks").joinpath("examples")))


def own_containers(client: docker.DockerClient) -> list:
    """Containers this test process opened and still has (other processes' containers are theirs)."""
    owner = f"cligym.owner={socket.gethostname()}:{os.getpid()}"
    return client.containers.list(all=True, filters={"label": [LABEL, owner]}, ignore_removed=True)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = connect()
    bootstrap(client)
    yield client
    leftovers = own_containers(client)
    for container in leftovers:
        container.remove(force=True)
    assert not leftovers, f"tests left cligym containers behind: {[c.name for c in leftovers]}"


@pytest.fixture(scope="session", autouse=True)
def cligym_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache for the whole session: what it holds is content-addressed (sdists, wheels, image manifests,
    the harness's wheels), and making it again in every test's home would cost a minute per home."""
    cache = tmp_path_factory.getbasetemp() / "cligym-cache"
    saved = os.environ.get("CLIGYM_CACHE")
    os.environ["CLIGYM_CACHE"] = str(cache)
    yield cache
    if saved is None:
        os.environ.pop("CLIGYM_CACHE", None)
    else:
        os.environ["CLIGYM_CACHE"] = saved


@pytest.fixture(autouse=True)
def cligym_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own CLIGYM_HOME (and the session's cache), so the user's registry and caches are never
    touched."""
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


@pytest.fixture(scope="session")
def gold(docker_client: docker.DockerClient) -> GoldEnvironment:
    """The examples' project before its breakage line: a healthy environment whose 5 tests pass."""
    example = load_task(EXAMPLES / "example-missing-module")
    dockerfile = example.environment.dockerfile.split("# ... and what broke it.")[0]
    environment = Environment(dockerfile, example.environment.files)
    image = build_environment(docker_client, environment, what="inventory gold")
    tests = replace(example.tests, fail_to_pass=(), pass_to_pass=())
    probe = GoldProbe(python="/opt/venv/bin/python", python_version="3.11", site_packages="",
                      stdlib="/usr/lib/python3.11",
                      project_module="inventory", distributions=(), test_imports=("inventory",), extension_modules=(),
                      shared_libraries=(), wheelhouse="/opt/wheelhouse", apt_archives="/var/cache/apt/archives")
    return GoldEnvironment("inventory", "1.0", image, environment, tests, tuple(sorted(example.tests.selected)), probe)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama built locally (no hub): real weights and tokenizer, garbage replies."""
    from cligym_env.llm import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("llm") / "tiny-llama")


@pytest.fixture(scope="module")
def vllm_engine(tiny_model: Path):
    """The real vLLM offline engine on the tiny model; one per module, so two engines never run at once."""
    from cligym_env.llm import make_client

    client = make_client(str(tiny_model), max_model_len=2048, dtype="float32", kv_cache_gib=0.5, enforce_eager=True)
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serve_vllm(model: Path, *, max_model_len: int, log: Path, timeout: float = 240.0) -> Iterator[str]:
    """`vllm serve` (the OpenAI-compatible server) of `model` on 127.0.0.1; its process group is always stopped."""
    port = free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", str(max_model_len), "--dtype", "float32", "--enforce-eager"]
    with log.open("wb") as sink:
        process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as reply:
                    json.load(reply)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vllm server not ready after {timeout:g} s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
