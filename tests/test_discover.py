"""Static discovery on small synthetic source trees: test requirements, where the tests are, the repair rounds."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from cligym_env.error import NoTestsFound, SourceError
from cligym_env.generator.discover import declared_requirements
from cligym_env.generator.repair import Plan, next_plan
from cligym_env.generator.source import read_source, unpacked


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_pyproject_extras_and_dependency_groups(tmp_path: Path) -> None:
    _tree(tmp_path, {"pyproject.toml": """
[project]
name = "demo"
[project.optional-dependencies]
test = ["freezegun>=1.0"]
docs = ["sphinx"]
[dependency-groups]
tests = ["pytest>=7", "hypothesis==6.1.0", {include-group = "typing"}, "demo[test]"]
typing = ["typing-extensions; python_version < '3.12'"]
"""})
    declared = declared_requirements(tmp_path, "demo")
    assert declared.extras == ("test",)
    assert declared.requirements == ("hypothesis", 'typing-extensions; python_version < "3.12"')


def test_setup_cfg_and_setup_py_read_without_running_them(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "setup.cfg": "[options]\ntests_require =\n    mock\n[options.extras_require]\ntesting = pytest-mock\n",
        "setup.py": "import sys\nsys.exit('never run')\nEXTRAS = {'tests': ['six'], 'speed': ['ujson']}\n"
                    "setup(name='demo', extras_require=EXTRAS, tests_require=['nose-parameterized'])\n"})
    declared = declared_requirements(tmp_path, "demo")
    assert declared.extras == ("testing", "tests")
    assert declared.requirements == ("mock", "nose-parameterized")


def test_tox_deps_follow_requirement_files_and_skip_lint_envs(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "tox.ini": "[tox]\nenvlist = py311\n[testenv]\nextras = tests\ndeps =\n    -r requirements/test.txt\n"
                   "    py38: importlib-metadata\n    -e .\n    {toxinidir}/x\ncommands = pytest {posargs}\n"
                   "[testenv:lint]\ndeps = flake8-bugbear\n",
        "requirements/test.txt": "# tests\nfreezegun==1.2.0  # time\n-r base.txt\n--index-url https://x\n",
        "requirements/base.txt": "pytz\n",
        "requirements-dev.in": "responses\nblack\n",
        "test-requirements.txt": "respx\n"})
    declared = declared_requirements(tmp_path, "demo")
    assert declared.extras == ("tests",)
    assert declared.requirements == ("freezegun", "pytz", "importlib-metadata", "responses", "respx")


def test_tests_inside_the_package_go_outside_it(tmp_path: Path) -> None:
    _tree(tmp_path, {"src/demo/__init__.py": "", "src/demo/tests/__init__.py": "",
                     "src/demo/tests/test_a.py": "import demo\nopen('examples/x.txt')\n",
                     "examples/x.txt": "hi", "docs/index.rst": "", "pytest.ini": "[pytest]\n"})
    source = read_source(tmp_path, "demo")
    assert (source.tests_dir, source.destination, source.in_package) == ("src/demo/tests", "demo/tests", "demo/tests")
    assert set(source.test_files) == {"__init__.py", "test_a.py"}
    assert set(source.root_files) == {"pytest.ini", "examples/x.txt"}  # docs/ is not named by the tests


def test_root_test_files_and_a_root_tests_folder(tmp_path: Path) -> None:
    _tree(tmp_path / "a", {"test_six.py": "import six\n", "six.py": "", "conftest.py": ""})
    source = read_source(tmp_path / "a", "six")
    assert (source.tests_dir, source.destination, source.in_package) == ("", "tests", "")
    assert set(source.test_files) == {"test_six.py"} and "conftest.py" in source.root_files
    _tree(tmp_path / "b", {"testing/test_x.py": "", "demo/__init__.py": "", "demo/tests/test_y.py": ""})
    assert read_source(tmp_path / "b", "demo").tests_dir == "testing"


def test_no_tests_and_bad_sources_are_named(tmp_path: Path) -> None:
    _tree(tmp_path / "empty", {"demo/__init__.py": "", "README": ""})
    with pytest.raises(NoTestsFound, match="no tests in its source.*--source PATH"):
        read_source(tmp_path / "empty", "demo")
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(SourceError, match="junk.tar.gz: not a folder or a readable archive"):
        with unpacked(tmp_path / "junk.tar.gz"):
            pass
    with tarfile.open(tmp_path / "demo-1.0.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "empty", arcname="demo-1.0")
    with unpacked(tmp_path / "demo-1.0.tar.gz") as root:
        assert root.name == "demo-1.0" and (root / "demo" / "__init__.py").is_file()


def test_repair_rounds_follow_the_errors_then_drop_what_still_fails() -> None:
    output = ("E   ModuleNotFoundError: No module named 'yaml'\nE   ModuleNotFoundError: No module named 'demo.x'\n"
              "ERROR tests/test_a.py - ModuleNotFoundError: No module named 'yaml'\n"
              "E       fixture 'mocker' not found\n")
    plan = next_plan(Plan(), output, local={"demo", "tests"})
    assert plan.requirements == ("PyYAML", "pytest-mock")
    plan = next_plan(plan, output, local={"demo", "tests"})  # asked for already: the module is left out
    assert plan.ignored == ("tests/test_a.py",) and "--ignore=tests/test_a.py" in plan.pytest_args
    assert next_plan(plan, output, local={"demo", "tests"}) is None
    refused = "ERROR: usage: pytest [options]\npytest: error: unrecognized arguments: --cov=demo --cov-report=xml\n"
    plan = next_plan(Plan(), refused, local=set())
    assert plan.requirements == ("pytest-cov",)
    assert next_plan(plan, refused, local=set()).pytest_args == ("-o", "addopts=")


def test_required_plugins_are_installed_then_the_check_is_lifted() -> None:
    output = "ERROR: Missing required plugins: pytest-cov>=4, pytest-timeout\n"
    plan = next_plan(Plan(), output, local=set())
    assert plan.requirements == ("pytest-cov", "pytest-timeout") and not plan.pytest_args
    assert next_plan(plan, output, local=set()).pytest_args == ("-o", "required_plugins=")


def test_the_projects_own_python_files_pattern_is_honoured(tmp_path: Path) -> None:
    _tree(tmp_path, {"mock/__init__.py": "", "mock/tests/testmock.py": "", "setup.cfg":
                     "[tool:pytest]\npython_files = test*.py\n"})
    assert read_source(tmp_path, "mock").tests_dir == "mock/tests"


def test_a_python_files_pattern_with_a_folder_matches_the_path_as_pytest_does(tmp_path: Path) -> None:
    _tree(tmp_path, {"faker/__init__.py": "", "tests/providers/test_address.py": "", "tests/utils.py": "",
                     "setup.cfg": "[tool:pytest]\npython_files = tests/*.py\n"})
    source = read_source(tmp_path, "faker")
    assert source.tests_dir == "tests" and "providers/test_address.py" in source.test_files
