"""The generator's data: a healthy (gold) environment, what we learnt by probing it, and a candidate breakage.

A candidate becomes a `Task` (the one task type) only after validation proves it real, stable and solvable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cligym_env.tasks.task import Environment, Tests


@dataclass(frozen=True)
class Distribution:
    """An installed Python distribution in the gold image."""

    name: str
    version: str
    top_level: tuple[str, ...]  # importable top-level modules
    files: tuple[str, ...]  # absolute paths of the files it installed (RECORD)


@dataclass(frozen=True)
class GoldProbe:
    """Facts about a gold image that operators use to propose concrete, targeted breakages."""

    python: str  # absolute path of the interpreter the tests run with (e.g. /opt/venv/bin/python)
    python_version: str  # e.g. "3.11.2"
    site_packages: str  # the venv's site-packages
    stdlib: str  # e.g. /usr/lib/python3.11
    project_module: str  # the project's top-level import name (e.g. "click")
    distributions: tuple[Distribution, ...]  # everything installed in the venv (pytest and friends included)
    test_imports: tuple[str, ...]  # top-level modules the test files import (parsed with ast)
    extension_modules: tuple[str, ...]  # absolute paths of compiled modules (.so) the project and deps ship
    shared_libraries: tuple[str, ...]  # system libraries (ldd) those modules and the interpreter link to
    wheelhouse: str  # folder in the image with every wheel installed (kept, as real machines keep caches)
    apt_archives: str  # folder in the image with the .deb files of the system packages (offline reinstall)

    def distribution(self, name: str) -> Distribution | None:
        wanted = name.lower().replace("_", "-")
        return next((d for d in self.distributions if d.name.lower().replace("_", "-") == wanted), None)


@dataclass(frozen=True)
class GoldEnvironment:
    """A project installed and passing its tests: the starting point of every inversion."""

    project: str
    version: str
    image: str  # tag of the built gold image
    environment: Environment  # how to build it again (Dockerfile FROM cligym/python:bookworm + context)
    tests: Tests  # the project's test files (hidden from the image), command, directory; no F2P/P2P yet
    passing: tuple[str, ...]  # test ids that passed twice in a row in the gold image (flaky ones dropped)
    probe: GoldProbe


@dataclass(frozen=True)
class Breakage:
    """One concrete way to break a gold environment, with its repair; not yet validated."""

    operator: str  # name of the operator that proposed it (e.g. "uninstall-dependency")
    category: str  # one of cligym_env.tasks.CATEGORIES
    target: str  # what it breaks (a distribution, file, library...), for dedupe and reports
    description: str  # what was done, for reports (never shown to the policy)
    dockerfile: str  # instructions appended to the gold image's Dockerfile (`FROM <gold image>` is added)
    solution: str  # bash script that repairs the broken container from inside, offline
    hint: str = ""  # one sentence that points to the area without giving the fix
    extra: dict[str, str] = field(default_factory=dict)
