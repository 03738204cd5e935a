"""`cligym generate --mode agentic` from the command line, against the real vLLM engine and a real
OpenAI-compatible `vllm serve`, on a real project's gold environment. The tiny model talks nonsense, so every
proposal must be rejected cleanly: counted in the report, no task written, no container left."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cligym_env.cli import app
from cligym_env.tasks import Registry
from tests.conftest import own_containers, serve_vllm

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]
runner = CliRunner()


@pytest.fixture(scope="module")
def vllm_server(tiny_model, tmp_path_factory):
    with serve_vllm(tiny_model, max_model_len=2048, log=tmp_path_factory.mktemp("agentic-server") / "vllm.log") as url:
        yield url


@pytest.mark.parametrize("backend", ["engine", "endpoint"])
def test_generate_agentic_from_the_command_line(backend, tiny_model, vllm_server, docker_client, cligym_home,
                                                tmp_path):
    llm = str(tiny_model) if backend == "engine" else vllm_server
    registry = tmp_path / "registry"
    result = runner.invoke(app, ["generate", "--mode", "agentic", "--llm", llm, "--project", "iniconfig",
                                 "--proposals", "2", "--workers", "2", "--registry", str(registry),
                                 "--max-model-len", "2048", "--kv-cache-gib", "0.5", "--dtype", "float32"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = json.loads((cligym_home / "runs" / "agentic-seed0" / "report.json").read_text())
    assert report["candidates"] == 2 and report["accepted"] == 0
    assert sum(report["rejections"].values()) == 2 and report["tokens"] > 0
    assert len(Registry(registry)) == 0 and not own_containers(docker_client)
