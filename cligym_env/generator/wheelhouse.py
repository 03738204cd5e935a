"""A project's code, fetched on the host: its sdist (which carries the test suite) and a wheelhouse.

Containers here cannot reach PyPI (HTTPS fails inside them), and repairs must work offline, so every wheel
the gold venv installs is gathered on the host for CPython 3.11 on x86-64 Linux and copied into the image.
Both are cached per project and version under `paths.cache_dir()`, so a second gold build downloads nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from cligym_env import paths
from cligym_env.error import ProjectNotFound, WheelhouseError

PYTHON_VERSION = "3.11"
# Bookworm has glibc 2.36, so any manylinux wheel up to 2.36 runs. pip does not widen a given manylinux tag to
# older ones (except manylinux2014 to 2010 and 1), so every tag is named; linux_x86_64 admits wheels built here.
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)), "manylinux2014_x86_64", "linux_x86_64")
MAX_SOURCE_BUILDS = 10
ROOT_CONFIGS = ("pytest.ini", "setup.cfg", "tox.ini", "pyproject.toml", "conftest.py")  # kept beside the tests
TEST_DIRS = ("tests", "test", "testing")
TEST_GROUPS = ("test", "tests", "testing")  # extras and dependency groups that hold test requirements


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def latest_version(name: str) -> str:
    """The newest release on the index (pip's own view, so the machine's index settings apply)."""
    run = _pip("index", "versions", name)
    match = re.search(r"^\S+ \(([^)\s]+)\)", run.stdout, flags=re.M)
    if run.returncode != 0 or not match:
        raise ProjectNotFound(f"project {name!r} was not found on the package index: {_error(run)}")
    return match.group(1)


def fetch_sdist(name: str, version: str) -> Path:
    """Download (once) the source distribution of `name==version`; it carries the tests the wheel lacks."""
    folder = paths.cache_dir() / "sdists" / f"{canonical(name)}-{version}"
    found = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.zip"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as scratch:
        run = _pip("download", "--no-deps", "--no-binary", name, "--dest", scratch, f"{name}=={version}")
        files = list(Path(scratch).iterdir())
        if "No matching distribution" in run.stdout + run.stderr:
            raise ProjectNotFound(f"no source distribution of {name}=={version} on the package index "
                                  f"(an sdist is needed for its tests): {_error(run)}")
        if run.returncode != 0 or len(files) != 1:
            raise WheelhouseError(f"downloading the sdist of {name}=={version} failed: {_error(run)}")
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(files[0], folder / files[0].name))


@dataclass(frozen=True)
class Source:
    """What the gold image and its hidden tests take from the sdist (never the project's own code)."""

    tests_dir: str  # the test folder at the sdist's root ("" if none was found)
    test_files: dict[str, bytes]  # its files, by path inside it
    root_files: dict[str, bytes]  # test configuration at the root (ROOT_CONFIGS), by name
    test_groups: tuple[str, ...]  # requirements of the PEP 735 dependency groups named like tests


def read_sdist(sdist: Path, tests_dir: str | None = None) -> Source:
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as scratch:
        shutil.unpack_archive(sdist, scratch, filter="data")
        root = next(Path(scratch).iterdir())
        tests_dir = tests_dir or next((d for d in TEST_DIRS if any((root / d).rglob("test_*.py"))
                                       or any((root / d).rglob("*_test.py"))), "")
        pyproject = root / "pyproject.toml"
        groups = tomllib.loads(pyproject.read_text()).get("dependency-groups", {}) if pyproject.is_file() else {}
        return Source(tests_dir, read_tree(root / tests_dir) if tests_dir else {},
                      {n: (root / n).read_bytes() for n in ROOT_CONFIGS if (root / n).is_file()},
                      tuple(dict.fromkeys(r for group in TEST_GROUPS for r in _expand(groups, group))))


def _expand(groups: dict[str, list[str | dict[str, str]]], group: str) -> list[str]:
    """A dependency group's requirements, with its `include-group` entries expanded."""
    return [r for item in groups.get(group, [])
            for r in (_expand(groups, item["include-group"]) if isinstance(item, dict) else [item])]


def read_tree(folder: Path) -> dict[str, bytes]:
    """Files under `folder` by relative POSIX path, less bytecode left by local test runs."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")}


def build_wheel(name: str, version: str, sdist: Path) -> Path:
    """Build the project's own wheel from its sdist on the host (cached), so the image installs what was tested."""
    folder = paths.cache_dir() / "wheels" / f"{canonical(name)}-{version}"
    found = sorted(folder.glob("*.whl"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as scratch:
        run = _pip("wheel", "--no-deps", "--wheel-dir", scratch, str(sdist))
        wheels = list(Path(scratch).glob("*.whl"))
        if run.returncode != 0 or len(wheels) != 1:
            raise WheelhouseError(f"building a wheel of {name}=={version} from {sdist.name} failed: {_error(run)}")
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(wheels[0], folder / wheels[0].name))


def wheel_metadata(wheel: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extras the wheel declares, its importable top-level names), read from the wheel itself."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        extras = tuple(Parser().parsestr(archive.read(metadata).decode()).get_all("Provides-Extra") or ())
        top_level = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
        modules = set(archive.read(top_level).decode().split()) if top_level else {
            n.split("/")[0] if "/" in n else n.split(".")[0] for n in names
            if ("/" in n or n.endswith((".py", ".so"))) and not n.split("/")[0].endswith((".dist-info", ".data"))}
    return extras, tuple(sorted(modules))


def build_wheelhouse(name: str, version: str, project_wheel: Path, extras: tuple[str, ...],
                     requirements: list[str]) -> Path:
    """Every wheel the venv installs: the project's own (with `extras`), `requirements`, and all their deps.

    Wheels come from the index for CPython 3.11 manylinux x86-64; a dependency that ships only an sdist is built
    here, and accepted only if it is pure Python (a compiled one built here might not load in the image).
    """
    key = hashlib.sha256(repr((project_wheel.name, extras, requirements, PLATFORMS)).encode()).hexdigest()[:12]
    folder = paths.cache_dir() / "wheelhouses" / f"{canonical(name)}-{version}-{key}"
    if (folder / ".complete").exists():
        return folder
    scratch = Path(tempfile.mkdtemp(dir=scratch_dir()))
    try:
        shutil.copy2(project_wheel, scratch)
        target = ["--only-binary", ":all:", "--python-version", PYTHON_VERSION, "--implementation", "cp",
                  "--abi", "cp" + PYTHON_VERSION.replace(".", ""), *(f"--platform={p}" for p in PLATFORMS)]
        project = str(scratch / project_wheel.name) + (f"[{','.join(extras)}]" if extras else "")
        for _ in range(MAX_SOURCE_BUILDS):
            run = _pip("download", *target, "--dest", str(scratch), "--find-links", str(scratch),
                       project, *requirements)
            if run.returncode == 0:
                break
            missing = re.search(r"No matching distribution found for ([^\s;]+)", run.stdout + run.stderr)
            if not missing:
                raise WheelhouseError(f"gathering the wheels of {name}=={version} failed: {_error(run)}")
            _build_pure_wheel(missing.group(1), scratch)
        else:
            raise WheelhouseError(f"{name}=={version}: more than {MAX_SOURCE_BUILDS} dependencies lack wheels")
        (scratch / ".complete").touch()
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _build_pure_wheel(requirement: str, folder: Path) -> None:
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as scratch:
        run = _pip("wheel", "--no-deps", "--wheel-dir", scratch, requirement)
        wheels = list(Path(scratch).glob("*.whl"))
        if run.returncode != 0 or len(wheels) != 1:
            raise WheelhouseError(f"{requirement} has no wheel for CPython {PYTHON_VERSION} on Linux x86-64 and "
                                  f"building one failed: {_error(run)}")
        if not wheels[0].name.endswith("-none-any.whl"):
            raise WheelhouseError(f"{requirement} has no wheel for CPython {PYTHON_VERSION} on Linux x86-64 and "
                                  f"is not pure Python ({wheels[0].name}); a host build might not load in the image")
        shutil.move(wheels[0], folder / wheels[0].name)


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def _error(run: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (run.stderr + run.stdout).splitlines() if line.startswith("ERROR")]
    return " ".join(lines)[-800:] or (run.stderr + run.stdout).strip()[-800:]


def scratch_dir() -> Path:
    folder = paths.cache_dir() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
