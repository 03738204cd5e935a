"""Gold environments from real PyPI sdists, one per discovery route, with no per-project entries.

- tests inside the package (toolz/tests): moved out of the installed package and its wheel, kept for grading;
- test requirements declared only in requirements files / tox.ini (itsdangerous needs freezegun from them);
- a compiled extension (simplejson's speedups): the image keeps a C compiler and Python's headers, and the
  probe sees the project's own compiled module; a cffi-based one (xattr) too, its modules aimed at by operators;
- test requirements only in the built wheel's METADATA (psutil's setup.py assembles its extras at run time);
- pytest's own refusals (a `-p` plugin in addopts that cannot load, a mistyped [tool.pytest] option) repaired.
Plus `generate --source` with a bad path: one line, exit 2.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from cligym_env.cli import app
from cligym_env.generator import wheelhouse
from cligym_env.generator.discover import wheel_requirements
from cligym_env.generator.gold import GoldOptions, build_gold
from cligym_env.generator.operators.compatibility import OPERATORS as COMPATIBILITY
from cligym_env.generator.repair import Plan, next_plan
from cligym_env.generator.types import GoldEnvironment
from cligym_env.runtime.sandbox import Sandbox


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gold-discovery")
    (home / "projects.toml").write_text("[defaults]\n")  # no per-project entries
    return home


def _gold(name: str, version: str, home: Path, client: docker.DockerClient) -> GoldEnvironment:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIGYM_HOME", str(home))
        return build_gold(name, version, client=client, options=GoldOptions(projects=home / "projects.toml"))


def _wheel_names(gold: GoldEnvironment, project: str) -> list[str]:
    wheel = next(data for path, data in gold.environment.files.items()
                 if path.startswith(f"wheelhouse/{project}-") and path.endswith(".whl"))
    import io
    return zipfile.ZipFile(io.BytesIO(wheel)).namelist()


def test_tests_inside_the_package_are_moved_out_of_it(home: Path, docker_client: docker.DockerClient) -> None:
    gold = _gold("toolz", "1.2.0", home, docker_client)
    assert gold.tests.directory == "/opt/project/toolz/tests"
    assert len(gold.passing) >= 100 and all(t.startswith("toolz/tests/test_") for t in gold.passing)
    assert "test_functoolz.py" in gold.tests.files
    assert not any(name.startswith("toolz/tests/") for name in _wheel_names(gold, "toolz"))
    with Sandbox(gold.image, client=docker_client) as sandbox:
        found = sandbox.run("find / -xdev -name test_functoolz.py | head -3; python -c 'import toolz; print(1)'")
        assert "test_functoolz" not in found.output and found.output.strip().endswith("1"), found.output


def test_test_requirements_named_only_in_requirement_files(home: Path, docker_client: docker.DockerClient) -> None:
    gold = _gold("itsdangerous", "2.2.0", home, docker_client)
    assert gold.probe.distribution("freezegun") is not None  # from requirements/tests*.txt, nowhere else
    assert any(t.startswith("tests/test_itsdangerous/test_timed.py::") for t in gold.passing)


def test_compiled_extension_keeps_its_toolchain(home: Path, docker_client: docker.DockerClient) -> None:
    gold = _gold("simplejson", "3.20.2", home, docker_client)
    assert any("/simplejson/_speedups" in path for path in gold.probe.extension_modules)
    assert gold.tests.directory == "/opt/project/simplejson/tests" and len(gold.passing) >= 100
    with Sandbox(gold.image, client=docker_client) as sandbox:
        tools = sandbox.run("command -v gcc && ls /usr/include/python3.11/Python.h && "
                            "python -c 'import simplejson._speedups'")
        assert tools.exit_code == 0, tools.output


def test_cffi_extension_is_probed_and_aimed_at(home: Path, docker_client: docker.DockerClient) -> None:
    gold = _gold("xattr", "1.3.1", home, docker_client)
    assert len(gold.passing) >= 10
    compiled = gold.probe.extension_modules  # the project's cffi module and cffi's own backend
    assert any(p.endswith("/xattr/_lib.abi3.so") for p in compiled), compiled
    assert any("/_cffi_backend." in p for p in compiled), compiled
    assert any(p.endswith("/xattr/_lib.abi3.so") for p in gold.probe.used_libraries)  # the gold run loaded it
    abi = next(op for op in COMPATIBILITY if op.name == "abi-tag-mismatch")
    assert any("/xattr/_lib.abi3.so:" in t.key for t in abi.available(gold.probe))


def test_test_extras_read_from_the_wheel_metadata(home: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIGYM_HOME", str(home))
        wheel = wheelhouse.build_wheel("psutil", "7.2.2", wheelhouse.fetch_sdist("psutil", "7.2.2"))
    found = wheel_requirements(wheel, "psutil")
    assert {"pytest-instafail", "pytest-xdist", "psleak"} <= set(found), found  # setup(**kwargs): not in the source
    assert not any(name.startswith(("pywin32", "wmi", "pylint", "sphinx")) for name in found), found


def _pytest(folder: Path, plan: Plan) -> str:
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plan.pytest_args, "-q"],
                         cwd=folder, capture_output=True, text=True, timeout=120)
    return run.stdout + run.stderr + f"\nexit {run.returncode}"


def test_repair_rounds_get_past_pytest_refusing_its_configuration(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pytest]\naddopts = ["-p cligym_no_such_plugin"]\n'
                                             'verbosity_subtests = "0"\n')
    (tmp_path / "test_demo.py").write_text("def test_one(subtests):\n    with subtests.test():\n        pass\n")
    plan, rounds = Plan(), 0
    while not (output := _pytest(tmp_path, plan)).endswith("exit 0"):
        plan, rounds = next_plan(plan, output, set()), rounds + 1
        assert plan is not None and rounds <= 4, output
    # `-p no:NAME` does not beat addopts' `-p NAME`; a TOML string where pytest wants an int goes in as `-o`
    assert plan.pytest_args == ("-p", "no:cligym_no_such_plugin", "-o", "addopts=", "-o", "verbosity_subtests=0")


def test_source_that_does_not_exist_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["generate", "--project", "toolz", "--source", str(tmp_path / "nowhere"),
                                      "--registry", str(tmp_path / "tasks")])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert said.count("nowhere: no such file or folder") == 1 and "Traceback" not in said, said


def test_source_checkout_without_tests_says_so(tmp_path: Path) -> None:
    checkout = tmp_path / "demo"
    (checkout / "cligym_demo_pkg").mkdir(parents=True)
    (checkout / "cligym_demo_pkg" / "__init__.py").write_text("VALUE = 1\n")
    (checkout / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                             '"setuptools.build_meta"\n[project]\nname = "cligym-demo-pkg"\n'
                                             'version = "0.1"\n')
    result = CliRunner().invoke(app, ["generate", "--project", "cligym-demo-pkg", "--source", str(checkout),
                                      "--registry", str(tmp_path / "tasks")], env={"CLIGYM_HOME": str(tmp_path)})
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert "cligym-demo-pkg==0.1: no tests in its source" in said and "Traceback" not in said, said
