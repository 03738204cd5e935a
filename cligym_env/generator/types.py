"""The generator's data: a healthy (gold) environment, what we learnt by probing it, and a candidate breakage.

A candidate becomes a `Task` (the one task type) only after validation proves it real, stable and solvable.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from docker.errors import DockerException

from cligym_env.error import CLIGymError
from cligym_env.tasks.task import Environment, Tests

# What may fail one candidate (or one inversion) without ending the run: our own errors, Docker's, the host's.
# Anything else is a bug of ours, raised with its traceback rather than recorded as a rejection reason.
EXPECTED_FAILURES = (CLIGymError, DockerException, OSError, subprocess.SubprocessError)


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
    # What one run of the gold suite really used, recorded by an audit hook (empty in recipes saved before it):
    used_modules: tuple[str, ...] = ()  # every module imported (dotted names), by any Python process of the run
    used_files: tuple[str, ...] = ()  # absolute paths opened or imported from (real paths too), tests excluded
    used_libraries: tuple[str, ...] = ()  # shared libraries mapped into a process (as `shared_libraries` names them)
    used_executables: tuple[str, ...] = ()  # programs started (subprocess, os.exec*, posix_spawn)
    used_events: tuple[str, ...] = ()  # names of the audit events raised (os.fork, socket.connect, ...)

    @property
    def usage_known(self) -> bool:
        return bool(self.used_modules)

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


SHORTCUT_CHOICES = ("keep", "drop")


@dataclass(frozen=True)
class EngineOptions:
    """A local vLLM engine's settings (agentic mode); an OpenAI-compatible URL ignores them."""

    max_model_len: int | None = None
    kv_cache_gib: float | None = None
    dtype: str = "auto"


@dataclass(frozen=True)
class GenerateConfig:
    """Everything `cligym generate` is asked to do, in one typed value (the CLI and benchmarks build it)."""

    projects: tuple[str, ...] = ()  # PyPI names; empty: the shipped list
    mode: str = "rules"  # rules | agentic
    max_tasks: int = 20  # valid breakages to keep per project (rules mode)
    categories: tuple[str, ...] = ()  # empty: all
    workers: int = 2
    seed: int = 0
    llm: str | None = None  # agentic mode: a local model folder or an OpenAI-compatible URL
    proposals: int = 10  # agentic mode: proposals per project
    keep_unverified: bool = False  # agentic mode: keep breakages whose repair failed, flagged
    shortcuts: str = "keep"  # keep | drop candidates that a plain reinstall from the wheelhouse repairs
    engine: EngineOptions = EngineOptions()
    source: Path | None = None  # a checkout or archive replacing the sdist of the one project named
