"""The gold-environment stage against the real Docker engine and PyPI: one small project (iniconfig) end to end.

The gold build runs once per module (a minute on a cold cache, under a second once cached); each test reads it.
"""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from cligym_env.generator.gold import (GoldRejected, Policy, ProjectNotFound, build_gold, judge_suite, load_gold,
                                       save_gold)
from cligym_env.generator.probe import parse_test_imports
from cligym_env.generator.types import GoldEnvironment
from cligym_env.images.build import build_image
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks import task

PROJECT, TEST_FILE = "iniconfig", "test_iniconfig.py"


@pytest.fixture(scope="module")
def gold_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gold-home")


@pytest.fixture(scope="module")
def gold(docker_client: docker.DockerClient, gold_home: Path) -> GoldEnvironment:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIGYM_HOME", str(gold_home))
        return build_gold(PROJECT, client=docker_client)


def test_gold_suite_passes_with_tests_kept_out_of_the_image(gold: GoldEnvironment,
                                                             docker_client: docker.DockerClient) -> None:
    assert gold.image.startswith(f"cligym/gold-{PROJECT}:")
    assert len(gold.passing) >= 10
    assert all(test.startswith(f"testing/{TEST_FILE}::") for test in gold.passing)
    assert TEST_FILE in gold.tests.files and gold.tests.directory == "/opt/project/testing"
    with Sandbox(gold.image, client=docker_client) as sandbox:
        found = sandbox.run(f"find / -xdev -name {TEST_FILE} | head; ls /opt/project", timeout=60)
        assert TEST_FILE not in found.output and "pyproject.toml" in found.output
        where = sandbox.run(f"python -c 'import {PROJECT}; print({PROJECT}.__file__)'")
        assert where.output.startswith(f"{gold.probe.site_packages}/{PROJECT}/"), where.output


def test_probe_lists_the_project_its_files_and_pytest(gold: GoldEnvironment) -> None:
    probe = gold.probe
    assert (probe.python, probe.stdlib) == ("/opt/venv/bin/python", "/usr/lib/python3.11")
    assert probe.project_module == PROJECT
    project = probe.distribution(PROJECT)
    assert project is not None and project.version == gold.version and project.top_level == (PROJECT,)
    assert f"{probe.site_packages}/{PROJECT}/__init__.py" in project.files
    pytest_dist = probe.distribution("pytest")
    assert pytest_dist is not None and pytest_dist.version == Policy().pytest
    assert {PROJECT, "pytest"} <= set(probe.test_imports)
    assert any(lib.endswith("/libc.so.6") for lib in probe.shared_libraries)
    assert any(lib.endswith("/libssl.so.3") for lib in probe.shared_libraries)  # through the stdlib's _ssl
    assert (probe.wheelhouse, probe.apt_archives) == ("/opt/wheelhouse", "/var/cache/apt/archives")


def test_save_and_load_round_trip(gold: GoldEnvironment, tmp_path: Path, docker_client: docker.DockerClient) -> None:
    folder = save_gold(gold, tmp_path / "saved")
    assert (folder / "gold.toml").is_file() and (folder / "environment" / "Dockerfile").is_file()
    assert (folder / "tests" / TEST_FILE).is_file() and any((folder / "environment" / "wheelhouse").glob("*.whl"))
    loaded = load_gold(folder)
    assert loaded == gold
    # The recipe alone rebuilds the image (layers cached here, so the same image comes back).
    tag = "cligym/gold-rebuild-check:test"
    build_image(docker_client, tag, loaded.environment.dockerfile, loaded.environment.files)
    try:
        assert docker_client.images.get(tag).id == docker_client.images.get(gold.image).id
    finally:
        docker_client.images.remove(tag)


def test_second_build_reuses_the_saved_recipe(gold: GoldEnvironment, gold_home: Path,
                                              docker_client: docker.DockerClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIGYM_HOME", str(gold_home))
    started = time.monotonic()
    again = build_gold(PROJECT, client=docker_client)
    assert time.monotonic() - started < 5
    assert again == gold


def test_unknown_project_is_named_in_the_error(docker_client: docker.DockerClient) -> None:
    with pytest.raises(ProjectNotFound, match="cligym-no-such-project-4242"):
        build_gold("cligym-no-such-project-4242", client=docker_client)


def test_offline_repairs_from_the_kept_wheels_and_debs(gold: GoldEnvironment,
                                                       docker_client: docker.DockerClient) -> None:
    """The repairs breakages rely on, with the network off: pip from the wheelhouse, apt and dpkg from the cache."""
    site, json_decoder = gold.probe.site_packages, "/usr/lib/python3.11/json/decoder.py"
    with Sandbox(gold.image, client=docker_client) as sandbox:  # network off by default
        assert sandbox.run(f"rm -rf {site}/{PROJECT} && python -c 'import {PROJECT}'").exit_code != 0
        pip = sandbox.run(f"pip install --force-reinstall --no-deps --no-index --find-links {gold.probe.wheelhouse} "
                          f"{PROJECT} && python -c 'import {PROJECT}'", timeout=120)
        assert pip.exit_code == 0, pip.output
        assert sandbox.run(f"rm {json_decoder} && python -c 'import json'").exit_code != 0
        apt = sandbox.run("apt-get install -y --reinstall libpython3.11-stdlib && python -c 'import json'", timeout=120)
        assert apt.exit_code == 0, apt.output
        assert sandbox.run(f"rm {json_decoder} && python -c 'import json'").exit_code != 0
        dpkg = sandbox.run(f"dpkg -i {gold.probe.apt_archives}/libpython3.11-stdlib_*.deb && python -c 'import json'",
                           timeout=120)
        assert dpkg.exit_code == 0, dpkg.output


def test_test_imports_leave_out_the_suites_own_modules() -> None:
    files = {"test_a.py": b"import helpers, attr.exceptions\nfrom tests.util import x\nfrom . import y\n",
             "helpers.py": b"import os\n", "data/broken.py": b"def (:\n"}
    tests = task.Tests(runner="script", command="true", files=files, directory="/opt/project/tests")
    assert parse_test_imports(tests) == ("attr", "os")


def test_judge_drops_flaky_tests_and_names_why_a_suite_is_rejected() -> None:
    policy = Policy(min_passing=2, min_pass_rate=0.5, max_suite_seconds=60)
    first = {"t::a": "passed", "t::b": "passed", "t::c": "passed", "t::s": "skipped"}
    assert judge_suite(first, {**first, "t::c": "failed"}, 1.0, policy, "p") == ("t::a", "t::b")
    with pytest.raises(GoldRejected, match="pass rate 67%"):
        judge_suite(first, {**first, "t::c": "failed"}, 1.0, Policy(min_passing=1), "p")
    with pytest.raises(GoldRejected, match="only 1 tests pass"):
        judge_suite({"t::a": "passed"}, {"t::a": "passed"}, 1.0, policy, "p")
    with pytest.raises(GoldRejected, match="took 99 s"):
        judge_suite(first, first, 99.0, policy, "p")
