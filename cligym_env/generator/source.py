"""Where a project's tests live in its source tree (an sdist, an archive or a checkout), and what they need beside them.

Tests are looked for, in order, in a `tests`/`test`/`testing` folder at the root, inside the package
(`<pkg>/tests`, `src/<pkg>/test`, ...) and as `test_*.py` / `*_test.py` files at the root. Wherever they were,
they are kept out of the gold image and copied in only for grading: a root folder goes back to its place, tests from
inside the package go to `/opt/project/<pkg>/tests` (outside the installed package, whose wheel is stripped of
them) and root test files to `/opt/project/tests`. Root test configuration (pytest.ini, tox.ini, conftest.py, ...)
and the sibling folders the tests name (`examples/`, `docs/`, ...) go into the image beside them.
"""

from __future__ import annotations

import configparser
import fnmatch
import logging
import re
import shutil
import tempfile
import tomllib
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cligym_env.error import NoTestsFound, SourceError
from cligym_env.files import read_tree
from cligym_env.generator.discover import Declared, declared_requirements

logger = logging.getLogger(__name__)

TEST_DIRS = ("tests", "test", "testing")
ROOT_CONFIGS = ("pytest.ini", "setup.cfg", "tox.ini", "pyproject.toml", "conftest.py")
_NOT_SIBLINGS = {"src", "build", "dist", "node_modules", "venv", ".venv", "htmlcov", "site-packages"}
MAX_SIBLING_BYTES = 20 << 20
DEFAULT_PATTERNS = ("test_*.py", "*_test.py")  # pytest's python_files, unless the project sets its own


@dataclass(frozen=True)
class Source:
    """What the gold image and its hidden tests take from the source tree (never the project's own code)."""

    tests_dir: str  # where the tests are in the tree ("tests", "src/pkg/tests"; "" for root test files)
    destination: str  # their folder under the project directory in the image ("tests", "pkg/tests")
    in_package: str  # the installed path the wheel must be stripped of ("pkg/tests"), "" if none
    test_files: dict[str, bytes]  # the tests folder's files, by path inside it
    root_files: dict[str, bytes]  # configuration and sibling folders kept in the image, by path from the root
    declared: Declared  # test requirements the project declares


@contextmanager
def unpacked(path: Path) -> Iterator[Path]:
    """The root of a source tree: a checkout folder as it is, or an sdist / tar / zip archive unpacked."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if not path.is_file():
        raise SourceError(f"--source {path}: no such file or folder; give a checkout folder or an sdist archive")
    with tempfile.TemporaryDirectory(prefix="cligym-source-") as scratch:
        try:
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    archive.extractall(scratch)
            else:
                shutil.unpack_archive(path, scratch, filter="data")
        except (shutil.ReadError, ValueError, OSError) as error:
            raise SourceError(f"--source {path}: not a folder or a readable archive (.tar.gz, .zip): {error}") from None
        entries = list(Path(scratch).iterdir())
        yield entries[0] if len(entries) == 1 and entries[0].is_dir() else Path(scratch)


def read_source(root: Path, project: str, tests_dir: str | None = None) -> Source:
    """Find the tests under `root` and what they need; NoTestsFound (naming where it looked) if there are none."""
    patterns = _python_files(root)
    tests_dir, destination, in_package = _locate(root, tests_dir, patterns)
    if tests_dir is None:
        raise NoTestsFound(f"{project}: no tests in its source ({root.name}): no {'/, '.join(TEST_DIRS)}/ folder, "
                           "no tests inside the package and no root test_*.py files; build from a checkout with "
                           "`--source PATH`, or name the folder with `tests = ...` in projects.toml")
    if tests_dir:
        test_files = read_tree(root / tests_dir)
    else:
        test_files = {p.name: p.read_bytes() for p in sorted(root.glob("*.py")) if _is_test(p, patterns)}
    root_files = {n: (root / n).read_bytes() for n in ROOT_CONFIGS if (root / n).is_file()}
    for sibling in _siblings(root, test_files, tests_dir):
        root_files |= {f"{sibling}/{n}": data for n, data in read_tree(root / sibling).items()}
    logger.info("%s: tests in %s/ (%d files), kept beside them: %s", project, tests_dir or ".", len(test_files),
                sorted({n.split("/")[0] for n in root_files}))
    return Source(tests_dir, destination, in_package, test_files, root_files, declared_requirements(root, project))


def _locate(root: Path, asked: str | None, patterns: tuple[str, ...]) -> tuple[str | None, str, str]:
    """(folder in the tree, destination folder, installed path to strip) of the tests; (None, "", "") if none."""
    if asked:
        if not (root / asked).is_dir():
            raise SourceError(f"tests = {asked!r}: no such folder in {root.name}")
        return asked, _installed(asked), _installed(asked) if _in_package(root, asked) else ""
    for folder in TEST_DIRS:
        if _has_tests(root / folder, patterns):
            return folder, folder, ""
    for init in sorted(root.glob("*/__init__.py")) + sorted(root.glob("src/*/__init__.py")):
        for folder in TEST_DIRS:
            if _has_tests(init.parent / folder, patterns):
                relative = (init.parent / folder).relative_to(root).as_posix()
                return relative, _installed(relative), _installed(relative)
    if any(_is_test(p, patterns) for p in root.glob("*.py")):
        return "", "tests", ""
    return None, "", ""


def _in_package(root: Path, folder: str) -> bool:
    return (root / folder).parent != root and (root / folder).parent.joinpath("__init__.py").is_file()


def _installed(relative: str) -> str:
    return relative.removeprefix("src/")


def _has_tests(folder: Path, patterns: tuple[str, ...]) -> bool:
    return folder.is_dir() and any(_is_test(p, patterns) for p in folder.rglob("*.py"))


def _is_test(path: Path, patterns: tuple[str, ...]) -> bool:
    """pytest's rule (`fnmatch_ex`): a pattern with a slash (`tests/*.py`) matches the whole path, others the name."""
    return path.name.endswith(".py") and any(
        fnmatch.fnmatch(path.as_posix(), f"*/{pattern}") if "/" in pattern else fnmatch.fnmatch(path.name, pattern)
        for pattern in patterns)


def _python_files(root: Path) -> tuple[str, ...]:
    """pytest's `python_files` as the project configures it (pytest.ini, tox.ini, setup.cfg, pyproject.toml)."""
    for name, section in (("pytest.ini", "pytest"), ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read_string((root / name).read_text(errors="replace")) if (root / name).is_file() else None
        except configparser.Error:
            continue
        if parser.has_option(section, "python_files"):
            return tuple(parser.get(section, "python_files").split())
    try:
        options = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("pytest", {}).get(
            "ini_options", {}) if (root / "pyproject.toml").is_file() else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        options = {}
    files = options.get("python_files", DEFAULT_PATTERNS)
    return tuple(files.split() if isinstance(files, str) else files)


def _siblings(root: Path, test_files: dict[str, bytes], tests_dir: str) -> list[str]:
    """Top-level folders (not the package, not the tests) whose names the test files mention, e.g. `examples`."""
    text = b"\n".join(data for name, data in test_files.items() if name.endswith((".py", ".cfg", ".ini", ".toml")))
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name
        if name.startswith(".") or name in _NOT_SIBLINGS or name.endswith(".egg-info") or name == tests_dir \
                or (folder / "__init__.py").is_file() or tests_dir.startswith(f"{name}/"):
            continue
        if re.search(rb"\b" + re.escape(name.encode()) + rb"\b", text):
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            if size <= MAX_SIBLING_BYTES:
                found.append(name)
            else:
                logger.warning("%s/ is named by the tests but is %d MB: left out", name, size >> 20)
    return found


def read_sdist(sdist: Path, project: str, tests_dir: str | None = None) -> Source:
    """The `Source` of a downloaded sdist (a pack pins the sdist and takes the tests from it): `tests_dir` where
    the tree has that folder, else located as for a gold build."""
    with unpacked(sdist) as root:
        asked = tests_dir if tests_dir and (root / tests_dir).is_dir() else None
        return read_source(root, project, asked)
