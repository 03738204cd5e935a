"""Gold environments: a real PyPI project installed in a venv, its own test suite passing, ready to be broken.

The project is installed into site-packages from a wheel (not run from a checkout), the image keeps the wheelhouse
and the .deb files so repairs work offline, and the test files stay out of the image: they are copied in only for
grading, so a policy cannot read or edit them. A gold recipe is saved as a folder so the image can be rebuilt
on a machine that lacks it.
"""

from __future__ import annotations

import logging
import re
import shlex
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import docker
from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename

from cligym_env import paths
from cligym_env.generator import wheelhouse
from cligym_env.generator.adopt import adopt, installed_pack_gold
from cligym_env.generator.discover import wheel_requirements
from cligym_env.generator.probe import APT_ARCHIVES, WHEELHOUSE, probe_gold
from cligym_env.generator.repair import Plan, next_plan
from cligym_env.generator.recipe import load_gold, save_gold
from cligym_env.generator.source import Source, read_source, unpacked
from cligym_env.generator.system import system_packages
from cligym_env.generator.types import GoldEnvironment
from cligym_env.grading import run_tests
from cligym_env.grading.grader import TestRun, discover_plugins
from cligym_env.images.bootstrap import PYTHON_IMAGE
from cligym_env.images.build import build_image
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks.task import Environment, Tests
from cligym_env.error import (FixturesMissing, GoldError, GoldRejected, ProjectNotFound, SourceError,
                              UnsupportedRunner)

logger = logging.getLogger(__name__)
PROJECTS_FILE = Path(__file__).with_name("projects.toml")
PROJECT_DIR = "/opt/project"
VENV_PYTHON = "/opt/venv/bin/python"

# Every installed package's .deb stays in apt's cache and is served as a local apt source, so
# `apt-get install --reinstall PKG` and `dpkg -i` work with the network off (lists from the mirror are not kept:
# they would name newer versions than the cached ones). Missing .debs (a registry-pulled base) are fetched first.
_APT_LOCAL_SOURCE = (rf"""RUN set -e; rm -f /etc/apt/apt.conf.d/docker-clean; cd {APT_ARCHIVES}; \
    missing=$(dpkg-query -W -f='${{Package}}\n' | while read -r p; do """
                     rf"""ls "$p"_*.deb >/dev/null 2>&1 || echo "$p"; done); \
    if [ -n "$missing" ]; then \
      apt-get update; apt-get install -y --reinstall --download-only $missing; rm -rf /var/lib/apt/lists/*; fi; \
    for f in *.deb; do dpkg-deb -f "$f"; \
      printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"; \
    done > Packages; \
    echo 'deb [trusted=yes] file:{APT_ARCHIVES} ./' > /etc/apt/sources.list.d/cligym-local.list; \
    apt-get update -o Dir::Etc::SourceList=/etc/apt/sources.list.d/cligym-local.list -o Dir::Etc::SourceParts=-""")


@dataclass(frozen=True)
class ProjectConfig:
    """Overrides for one project (see projects.toml); everything left out is discovered."""

    name: str
    version: str | None = None
    module: str | None = None
    tests: str | None = None
    test_deps: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    deselect: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """What every gold suite must meet, and the pytest it runs with."""

    pytest: str = "9.2.0"
    min_passing: int = 10
    min_pass_rate: float = 0.8
    max_suite_seconds: float = 300.0
    repair_rounds: int = 4  # gold builds driven by the suite's own errors before it is judged as it is


@dataclass(frozen=True)
class GoldOptions:
    """Where a gold environment comes from and goes: a source tree other than the sdist, the overrides, the folder."""

    source: Path | None = None  # a checkout folder or an sdist / tar / zip archive (for sdists without tests)
    projects: Path = PROJECTS_FILE
    folder: Path | None = None  # default: $CLIGYM_HOME/gold/NAME-VERSION (NAME-VERSION-source with `source`)


def load_projects(path: Path = PROJECTS_FILE) -> tuple[Policy, dict[str, ProjectConfig]]:
    data = tomllib.loads(Path(path).read_text())
    try:
        projects = {wheelhouse.canonical(name): ProjectConfig(name, **{k: tuple(v) if isinstance(v, list) else v
                                                                      for k, v in entry.items()})
                    for name, entry in data.get("projects", {}).items()}
        return Policy(**data.get("defaults", {})), projects
    except TypeError as error:  # an unknown key
        raise GoldError(f"{path}: {error}; known keys: [defaults] {', '.join(vars(Policy()))}, "
                        f"[projects.NAME] {', '.join(k for k in vars(ProjectConfig('')) if k != 'name')}") from None


def default_folder(name: str, version: str, source: Path | None = None) -> Path:
    return paths.home() / "gold" / f"{wheelhouse.canonical(name)}-{version}{'-source' if source else ''}"


def build_gold(name: str, version: str | None = None, *, client: docker.DockerClient,
               options: GoldOptions = GoldOptions()) -> GoldEnvironment:
    """Build, test and probe the gold environment of a PyPI project; reuse a saved recipe whose image exists."""
    policy, configs = load_projects(options.projects)
    config = configs.get(wheelhouse.canonical(name), ProjectConfig(name))
    installed = installed_pack_gold(name, version or config.version) if options.source is None else None
    if options.source is None:
        version = version or config.version or (installed[0] if installed else wheelhouse.latest_version(name))
        archive, wheel = None, None
    else:
        archive = Path(options.source)
        if not archive.exists():
            raise SourceError(f"--source {archive}: no such file or folder; give a checkout folder or an archive")
        wheel = wheelhouse.build_wheel(name, "source", archive)
        version = version or str(parse_wheel_filename(wheel.name)[1])
    folder = Path(options.folder or default_folder(name, version, options.source))
    if (folder / "gold.toml").exists():
        gold = load_gold(folder)
        ensure_image(gold, client=client)
        return gold
    if installed is not None and options.folder is None:  # an installed pack's gold: its tasks and ours pack together
        gold = adopt(installed[1], config.module, client=client)
        save_gold(gold, folder)
        return gold
    if archive is None:
        archive = wheelhouse.fetch_sdist(name, version)
        logger.info("%s==%s: building its wheel and wheelhouse on the host", name, version)
        wheel = wheelhouse.build_wheel(name, version, archive)
    gold = _build(name, version, archive, wheel, config, policy, client)
    save_gold(gold, folder)
    return gold


def _build(name: str, version: str, archive: Path, wheel: Path, config: ProjectConfig, policy: Policy,
           client: docker.DockerClient) -> GoldEnvironment:
    """Build and run the suite, letting its own errors drive up to `policy.repair_rounds` builds; then judge it."""
    what = f"{name}=={version}"
    with unpacked(archive) as root:
        source = read_source(root, what, config.tests)
    if source.in_package:
        wheel = wheelhouse.strip_wheel(wheel, source.in_package)
    declared_extras, modules = wheelhouse.wheel_metadata(wheel)
    wanted = {wheelhouse.canonical(e) for e in source.declared.extras}
    extras = tuple(e for e in declared_extras if wheelhouse.canonical(e) in wanted)
    system = system_packages(wheel)
    module = config.module or wheelhouse.closest_module(name, modules)
    local = set(modules) | {PurePosixPath(p).parts[0].removesuffix(".py") for p in source.test_files} | {"tests"}
    args = (*config.pytest_args, *(f"--deselect={test}" for test in config.deselect))
    # no test extra found in the source: the wheel's METADATA may still name one (extras assembled at run time)
    from_wheel = () if extras else wheel_requirements(wheel, name)
    declared = tuple(dict.fromkeys((*source.declared.requirements, *from_wheel)))
    plan = Plan(declared, args, tried=frozenset(wheelhouse.canonical(Requirement(r).name) for r in declared))
    for attempt in range(1, policy.repair_rounds + 1):
        image, environment, tests = _image(what, wheel, extras, system, plan, source, config, policy, client)
        with Sandbox(image, task_id="gold", client=client) as sandbox:
            tests = replace(tests, plugins=discover_plugins(sandbox, tests))
            first, seconds = _timed_run(sandbox, tests)
        following = next_plan(plan, _diagnosis(first), local) if attempt < policy.repair_rounds else None
        if following is None:
            break
        logger.info("%s: repair round %d", what, attempt)
        plan = following
    if first.error:
        raise _cause(GoldRejected(f"{what}: {first.error}\n--- test output ---\n{first.output[-3000:]}"), first,
                     source, what)
    with Sandbox(image, task_id="gold", client=client) as sandbox:
        second, again = _timed_run(sandbox, tests)
        probe = probe_gold(sandbox, tests, module)
    try:
        passing = judge_suite(first.outcomes, second.outcomes, max(seconds, again), policy, what)
    except GoldRejected as error:
        raise _cause(error, first, source, what) from None
    tests = replace(tests, timeout=float(max(60, round(5 * max(seconds, again)))))
    return GoldEnvironment(name, version, image, environment, tests, passing, probe)


def _image(what: str, wheel: Path, extras: tuple[str, ...], system: tuple[str, ...], plan: Plan, source: Source,
           config: ProjectConfig, policy: Policy, client: docker.DockerClient) -> tuple[str, Environment, Tests]:
    """The gold image of one plan (built unless it exists) with its recipe and tests."""
    name, version = parse_wheel_filename(wheel.name)[:2]
    required = [*config.test_deps, f"pytest=={policy.pytest}"]
    house, kept = wheelhouse.build_wheelhouse(name, str(version), wheel, extras, required, list(plan.requirements))
    project_files = {f"project/{n}": data for n, data in source.root_files.items()}
    files = {f"wheelhouse/{w.name}": w.read_bytes() for w in sorted(house.glob("*.whl"))} | project_files
    install = [f"{name}{'[' + ','.join(extras) + ']' if extras else ''}=={version}", *required, *kept]
    tests = Tests(python=VENV_PYTHON, workdir=PROJECT_DIR, rootdir=PROJECT_DIR,
                  pytest_args=("-q", *plan.pytest_args), files=source.test_files,
                  directory=f"{PROJECT_DIR}/{source.destination}", timeout=policy.max_suite_seconds)
    environment = Environment(_dockerfile(install, system, bool(project_files)), files)
    image = f"cligym/gold-{name}:{environment.content_hash()[:24]}"
    logger.info("%s: building %s", what, image)
    build_image(client, image, environment.dockerfile, environment.files, what=f"gold image of {what}")
    return image, environment, tests


def _timed_run(sandbox: Sandbox, tests: Tests) -> tuple[TestRun, float]:
    started = time.monotonic()
    run = run_tests(sandbox, tests)
    return run, time.monotonic() - started


def _diagnosis(run: TestRun) -> str:
    """The run's output and the tracebacks of its errors and failures: what the repair rounds read."""
    details = [r.details or r.message for r in run.results.values() if r.outcome in ("error", "failed")]
    return "\n".join([run.output, *details])[-200_000:]


def _cause(error: GoldRejected, run: TestRun, source: Source, what: str) -> GoldRejected:
    """The rejection, named plainly where the cause is one a user can act on."""
    ran = [t for t, outcome in run.outcomes.items() if outcome in ("passed", "failed", "error")]
    missing = re.search(r"FileNotFoundError: .*?No such file or directory: '([^']+)'", _diagnosis(run))
    if not ran and not run.error:
        runner = next((n for n in ("runtests.py", "run_tests.py", "test.py", "setup.py") if n in source.root_files
                       or n in source.test_files), "")
        return UnsupportedRunner(f"{what}: pytest collected no tests from {source.tests_dir or 'the root'}/ "
                                 f"({len(source.test_files)} files); the project seems to use a runner of its own"
                                 + (f" ({runner})" if runner else "") + "; name the folder with `tests = ...` in "
                                 "projects.toml if it is elsewhere")
    if missing:
        return FixturesMissing(f"{what}: the tests open files its source does not ship (FileNotFoundError: "
                               f"{missing.group(1)}); build from a checkout with `--source PATH`. {error}")
    return error


def ensure_image(gold: GoldEnvironment, *, client: docker.DockerClient) -> str:
    """Rebuild the gold image from its saved recipe where this Docker host lacks it (same content, same tag)."""
    return build_image(client, gold.image, gold.environment.dockerfile, gold.environment.files,
                       what=f"gold image of {gold.project}=={gold.version}")


def judge_suite(first: dict[str, str], second: dict[str, str], seconds: float, policy: Policy,
                what: str) -> tuple[str, ...]:
    """The tests that passed in both runs (flaky ones dropped); GoldRejected, with the reason, if the suite is unfit."""
    passing = tuple(sorted(t for t, outcome in first.items() if outcome == "passed" and second.get(t) == "passed"))
    ran = [t for t, outcome in first.items() if outcome in ("passed", "failed", "error")]
    flaky = sum(first.get(t) != second.get(t) for t in set(first) | set(second))
    rate = len(passing) / len(ran) if ran else 0.0
    logger.info("%s: %d of %d tests pass twice (%d flaky, %d skipped); suite %.1f s", what, len(passing), len(ran),
                flaky, len(first) - len(ran), seconds)
    if len(passing) < policy.min_passing:
        raise GoldRejected(f"{what}: only {len(passing)} tests pass twice (at least {policy.min_passing} needed)")
    if rate < policy.min_pass_rate:
        failing = sorted(t for t in ran if t not in passing)[:10]
        raise GoldRejected(f"{what}: pass rate {rate:.0%} is under {policy.min_pass_rate:.0%}; failing: {failing}")
    if seconds > policy.max_suite_seconds:
        raise GoldRejected(f"{what}: the suite took {seconds:.0f} s (limit {policy.max_suite_seconds:.0f} s)")
    return passing


def _dockerfile(install: list[str], system: tuple[str, ...], has_project_files: bool) -> str:
    apt = (f"RUN apt-get update && apt-get install -y --no-install-recommends {' '.join(system)} "
           "&& rm -rf /var/lib/apt/lists/*") if system else None
    return "\n".join(line for line in [
        f"FROM {PYTHON_IMAGE}",
        apt,
        _APT_LOCAL_SOURCE,
        f"COPY wheelhouse/ {WHEELHOUSE}/",
        # `bin/python -m pip`, as every repair runs it: pip writes console scripts with sys.executable as their
        # shebang, so a reinstall must give back the very bytes of the gold image or the audit flags the repair
        f"RUN python3 -m venv /opt/venv && /opt/venv/bin/python -m pip install --no-index --find-links {WHEELHOUSE} "
        + " ".join(shlex.quote(r) for r in install),
        "ENV PATH=/opt/venv/bin:$PATH",
        f"COPY project/ {PROJECT_DIR}/" if has_project_files else f"RUN mkdir -p {PROJECT_DIR}",
        f"WORKDIR {PROJECT_DIR}",
        "",
    ] if line is not None)
