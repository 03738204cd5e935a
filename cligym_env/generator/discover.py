"""What a project says its tests need, read statically from its source tree (nothing of it is executed).

Projects name their test requirements in many places: pyproject extras and PEP 735 dependency groups, setup.cfg
and setup.py extras, tox.ini `deps`/`extras` (following `-r` files), and requirements files named for tests or
development; and, for a setup.py that assembles its extras at run time, the built wheel's METADATA.
Everything found is a wish, not a promise: version pins are dropped (old pins seldom have wheels for
today's Python), tools no test imports (linters, docs, release tooling) are left out, and the wheelhouse drops a
wish that cannot be resolved. pytest itself is left out too: the gold venv pins its own.
"""

from __future__ import annotations

import ast
import configparser
import logging
import re
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

logger = logging.getLogger(__name__)

TEST_EXTRAS = ("test", "tests", "testing", "dev")  # extras and dependency groups that hold test requirements
REQUIREMENT_GLOBS = ("requirements*/*test*", "requirements*/dev*", "requirements-dev*", "requirements_dev*",
                     "requirements-test*", "requirements_test*", "test-requirements*", "test_requirements*",
                     "dev-requirements*", "tests/requirements*")
# Not needed to run a test suite, and often heavy or unbuildable: never installed from a wish.
TOOLS = {canonicalize_name(n) for n in (
    "pytest", "tox", "nox", "pre-commit", "black", "ruff", "flake8", "pylint", "mypy", "isort", "sphinx",
    "sphinx-rtd-theme", "furo", "twine", "build", "wheel", "setuptools", "pip", "check-manifest", "codecov",
    "coveralls", "bump2version", "bumpversion", "towncrier", "pyright", "pyupgrade", "autopep8", "pycodestyle",
    "pydocstyle", "bandit", "readme-renderer", "ipython", "ipdb", "pdbpp", "myst-parser", "mkdocs",
    "mkdocs-material", "types-setuptools", "pip-tools", "flit", "hatch", "poetry", "docutils",
    "sphinx-autodoc-typehints")}


@dataclass(frozen=True)
class Declared:
    """Test requirements a project declares: extras of its own to install, and other requirements (pins dropped)."""

    extras: tuple[str, ...]  # names of the project's extras that hold test requirements
    requirements: tuple[str, ...]  # e.g. "freezegun", "pytest-mock", 'tomli; python_version < "3.11"'


def declared_requirements(root: Path, project: str) -> Declared:
    """Every test requirement `root` (an unpacked sdist or checkout) declares, in a stable order, deduplicated."""
    extras: list[str] = []
    found: list[str] = []
    pyproject = _toml(root / "pyproject.toml")
    optional = pyproject.get("project", {}).get("optional-dependencies", {})
    extras += [e for e in optional if e in TEST_EXTRAS]
    groups = pyproject.get("dependency-groups", {})
    for group in TEST_EXTRAS:
        found += _expand(groups, group, set())
    setup_cfg = _ini(root / "setup.cfg")
    if setup_cfg.has_section("options.extras_require"):
        extras += [e for e in setup_cfg.options("options.extras_require") if e in TEST_EXTRAS]
    if setup_cfg.has_option("options", "tests_require"):
        found += _lines(setup_cfg.get("options", "tests_require"))
    setup_extras, tests_require = _setup_py(root / "setup.py")
    extras += [e for e in setup_extras if e in TEST_EXTRAS]
    found += tests_require
    tox = _ini(root / "tox.ini")
    for section in tox.sections():
        if section == "testenv" or section.startswith("testenv:") and not _tool_env(section):
            extras += [e.split(":")[-1].strip() for e in _lines(tox.get(section, "extras", fallback=""))]
            found += _requirement_lines(tox.get(section, "deps", fallback=""), root, set())
    for pattern in REQUIREMENT_GLOBS:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and path.suffix in (".txt", ".in"):
                found += _requirement_lines(path.read_text(errors="replace"), path.parent, {path})
    requirements = _clean(found, canonicalize_name(project))
    logger.debug("%s declares test extras %s and requirements %s", project, extras, requirements)
    return Declared(tuple(dict.fromkeys(extras)), requirements)


def wheel_requirements(wheel: Path, project: str) -> tuple[str, ...]:
    """The requirements the built wheel's METADATA gives its test extras, as they apply on this host (the image's
    platform): a setup.py that assembles its extras at run time (`setup(**kwargs)`) declares them only there.

    The test-named extras are used, "dev" only where there is none (it usually adds linters and release tools)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        message = Parser().parsestr(archive.read(metadata).decode(errors="replace")) if metadata else None
    if message is None:
        return ()
    declared = message.get_all("Provides-Extra") or []
    extras = [e for e in declared if e != "dev" and e in TEST_EXTRAS] or [e for e in declared if e in TEST_EXTRAS]
    found: list[str] = []
    for text in message.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(text)
            marker = requirement.marker
            applies = marker is not None and "extra" in str(marker) and any(marker.evaluate({"extra": e})
                                                                            for e in extras)
        except (InvalidRequirement, UndefinedEnvironmentName):
            continue
        if applies:
            requirement.marker = None
            found.append(str(requirement))
    return _clean(found, canonicalize_name(project))


def _clean(found: list[str], project: str) -> tuple[str, ...]:
    """Valid requirements, pins dropped, tools and the project itself left out, first mention kept."""
    kept: dict[str, str] = {}
    for text in found:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        name = canonicalize_name(requirement.name)
        if name in TOOLS or name == project or name in kept or requirement.url:
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        kept[name] = f"{requirement.name}{extras}" + (f"; {requirement.marker}" if requirement.marker else "")
    return tuple(kept.values())


def _expand(groups: dict, group: str, seen: set[str]) -> list[str]:
    """A PEP 735 group's requirements, its `include-group` entries expanded (cycles cut)."""
    if group in seen:
        return []
    seen.add(group)
    return [r for item in groups.get(group, [])
            for r in (_expand(groups, item.get("include-group", ""), seen) if isinstance(item, dict) else [item])]


def _requirement_lines(text: str, base: Path, seen: set[Path]) -> list[str]:
    """Requirements in pip's file format (or tox `deps`): `-r` followed, options and local paths skipped."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("#") or not line:
            continue
        line = re.sub(r"^[\w,\-{}.]+:\s+", "", line)  # a tox factor condition ("py38: mock")
        if line.startswith(("-r", "--requirement")):
            target = (base / line.split(None, 1)[-1].removeprefix("-r").strip()).resolve()
            if target.is_file() and target not in seen:
                seen.add(target)
                found += _requirement_lines(target.read_text(errors="replace"), target.parent, seen)
        elif not line.startswith(("-", ".", "/")) and "{" not in line:
            found.append(line)
    return found


def _setup_py(path: Path) -> tuple[list[str], list[str]]:
    """(extras names, tests_require) of a setup() call, where they are literals (read with ast, never run)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return [], []
    assigned = {target.id: node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    extras: list[str] = []
    tests_require: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or getattr(node.func, "id", getattr(node.func, "attr", "")) != "setup":
            continue
        for keyword in node.keywords:
            value = assigned.get(keyword.value.id, keyword.value) if isinstance(keyword.value, ast.Name) \
                else keyword.value
            if keyword.arg == "extras_require" and isinstance(value, ast.Dict):
                extras += [k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            elif keyword.arg == "tests_require":
                tests_require += _literal_strings(value)
    return extras, tests_require


def _literal_strings(node: ast.AST) -> list[str]:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, (list, tuple)) else []


def _tool_env(section: str) -> bool:
    """A tox environment for docs, linting or releases, not for tests."""
    return bool(re.search(r"docs?|lint|flake8|mypy|typing|type|style|format|pre-commit|release|build|pkg|coverage",
                          section.removeprefix("testenv:")))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,]", text) if line.strip() and not line.strip().startswith("#")]


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text()) if path.is_file() else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        logger.warning("%s is not valid TOML; its test requirements are not read", path)
        return {}


def _ini(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    try:
        if path.is_file():
            parser.read_string(path.read_text(errors="replace"))
    except configparser.Error:
        logger.warning("%s cannot be parsed; its test requirements are not read", path)
    return parser
