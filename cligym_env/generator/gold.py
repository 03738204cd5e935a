"""Gold environments: a real PyPI project installed in a venv, its own test suite passing, ready to be broken.

The project is installed into site-packages from a wheel (not run from a checkout), the image keeps the wheelhouse
and the .deb files so repairs work offline, and the test files stay out of the image: they are copied in only for
grading, so a policy cannot read or edit them. A gold recipe is saved as a folder so the image can be rebuilt
on a machine that lacks it.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import docker
import tomli_w

from cligym_env import paths
from cligym_env.generator import wheelhouse
from cligym_env.generator.probe import APT_ARCHIVES, WHEELHOUSE, probe_gold
from cligym_env.generator.types import Distribution, GoldEnvironment, GoldProbe
from cligym_env.grading import run_tests
from cligym_env.grading.grader import discover_plugins
from cligym_env.images.bootstrap import PYTHON_IMAGE
from cligym_env.images.build import build_image
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks.task import Environment, Tests
from cligym_env.error import GoldError, GoldRejected, ProjectNotFound

PROJECTS_FILE = Path(__file__).with_name("projects.toml")
PROJECT_DIR = "/opt/project"
VENV_PYTHON = "/opt/venv/bin/python"

# Every installed package's .deb stays in apt's cache and is served as a local apt source, so
# `apt-get install --reinstall PKG` and `dpkg -i` work with the network off (lists from the mirror are not kept:
# they would name newer versions than the cached ones). Missing .debs (a registry-pulled base) are fetched first.
_APT_LOCAL_SOURCE = rf"""RUN set -e; rm -f /etc/apt/apt.conf.d/docker-clean; cd {APT_ARCHIVES}; \
    missing=$(dpkg-query -W -f='${{Package}}\n' | while read -r p; do ls "$p"_*.deb >/dev/null 2>&1 || echo "$p"; done); \
    if [ -n "$missing" ]; then \
      apt-get update; apt-get install -y --reinstall --download-only $missing; rm -rf /var/lib/apt/lists/*; fi; \
    for f in *.deb; do dpkg-deb -f "$f"; \
      printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"; \
    done > Packages; \
    echo 'deb [trusted=yes] file:{APT_ARCHIVES} ./' > /etc/apt/sources.list.d/cligym-local.list; \
    apt-get update -o Dir::Etc::SourceList=/etc/apt/sources.list.d/cligym-local.list -o Dir::Etc::SourceParts=-"""


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


def default_folder(name: str, version: str) -> Path:
    return paths.home() / "gold" / f"{wheelhouse.canonical(name)}-{version}"


def build_gold(name: str, version: str | None = None, *, client: docker.DockerClient,
               log: Callable[[str], None] = print, projects: Path = PROJECTS_FILE,
               folder: Path | None = None) -> GoldEnvironment:
    """Build, test and probe the gold environment of a PyPI project; reuse a saved recipe whose image exists."""
    policy, configs = load_projects(projects)
    config = configs.get(wheelhouse.canonical(name), ProjectConfig(name))
    version = version or config.version or wheelhouse.latest_version(name)
    folder = Path(folder or default_folder(name, version))
    if (folder / "gold.toml").exists():
        gold = load_gold(folder)
        ensure_image(gold, client=client, log=log)
        return gold
    environment, tests, module = _prepare(name, version, config, policy, log)
    image = f"cligym/gold-{wheelhouse.canonical(name)}:{environment.content_hash()[:24]}"
    log(f"{name}=={version}: building {image}")
    build_image(client, image, environment.dockerfile, environment.files, what=f"gold image of {name}=={version}")
    passing, seconds, probe, tests = _validate(client, image, tests, module, policy, f"{name}=={version}", log)
    tests = replace(tests, timeout=float(max(60, round(5 * seconds))))
    gold = GoldEnvironment(name, version, image, environment, tests, passing, probe)
    save_gold(gold, folder)
    return gold


def _prepare(name: str, version: str, config: ProjectConfig, policy: Policy,
             log: Callable[[str], None]) -> tuple[Environment, Tests, str]:
    """From the sdist: the test files and root test configs; on the host: the wheel and wheelhouse."""
    sdist = wheelhouse.fetch_sdist(name, version)
    source = wheelhouse.read_sdist(sdist, config.tests)
    if not source.test_files:
        raise GoldRejected(f"{name}=={version}: its sdist has no {', '.join(wheelhouse.TEST_DIRS)} folder with test "
                           "files; name the folder with `tests = ...` in projects.toml")
    project_files = {f"project/{n}": data for n, data in source.root_files.items()}
    log(f"{name}=={version}: building its wheel and wheelhouse on the host")
    wheel = wheelhouse.build_wheel(name, version, sdist)
    declared_extras, modules = wheelhouse.wheel_metadata(wheel)
    extras = tuple(e for e in declared_extras if e in wheelhouse.TEST_GROUPS)
    requirements = [*source.test_groups, *config.test_deps, f"pytest=={policy.pytest}"]
    house = wheelhouse.build_wheelhouse(name, version, wheel, extras, requirements)
    files = {f"wheelhouse/{w.name}": w.read_bytes() for w in sorted(house.glob("*.whl"))} | project_files
    install = [f"{name}[{','.join(extras)}]=={version}" if extras else f"{name}=={version}", *requirements]
    args = [*config.pytest_args, *(f"--deselect={test}" for test in config.deselect)]
    tests = Tests(python=VENV_PYTHON, workdir=PROJECT_DIR, rootdir=PROJECT_DIR, pytest_args=("-q", *args),
                  files=source.test_files, directory=f"{PROJECT_DIR}/{source.tests_dir}", timeout=policy.max_suite_seconds)
    module = config.module or _closest(name, modules)
    return Environment(_dockerfile(install, bool(project_files)), files), tests, module


def ensure_image(gold: GoldEnvironment, *, client: docker.DockerClient, log: Callable[[str], None] = print) -> str:
    """Rebuild the gold image from its saved recipe where this Docker host lacks it (same content, same tag)."""
    return build_image(client, gold.image, gold.environment.dockerfile, gold.environment.files,
                       log=log, what=f"gold image of {gold.project}=={gold.version}")


def _validate(client: docker.DockerClient, image: str, tests: Tests, module: str, policy: Policy, what: str,
              log: Callable[[str], None]) -> tuple[tuple[str, ...], float, GoldProbe, Tests]:
    """Run the suite twice in fresh containers; keep tests that passed both times, judge the rest.

    The pytest plugins the gold environment provides are recorded, so grading loads exactly those."""
    runs, seconds = [], []
    for attempt in (1, 2):
        with Sandbox(image, task_id="gold", client=client) as sandbox:
            if attempt == 1:
                tests = replace(tests, plugins=discover_plugins(sandbox, tests))
            started = time.monotonic()
            run = run_tests(sandbox, tests)
            seconds.append(time.monotonic() - started)
            if run.error:
                raise GoldRejected(f"{what}: {run.error}\n--- test output ---\n{run.output[-3000:]}")
            runs.append(run.outcomes)
            if attempt == 1:
                probe = probe_gold(sandbox, tests, module)
    return judge_suite(runs[0], runs[1], max(seconds), policy, what, log), max(seconds), probe, tests


def judge_suite(first: dict[str, str], second: dict[str, str], seconds: float, policy: Policy, what: str,
                log: Callable[[str], None] = print) -> tuple[str, ...]:
    """The tests that passed in both runs (flaky ones dropped); GoldRejected, with the reason, if the suite is unfit."""
    passing = tuple(sorted(t for t, outcome in first.items() if outcome == "passed" and second.get(t) == "passed"))
    ran = [t for t, outcome in first.items() if outcome in ("passed", "failed", "error")]
    flaky = sum(first.get(t) != second.get(t) for t in set(first) | set(second))
    rate = len(passing) / len(ran) if ran else 0.0
    log(f"{what}: {len(passing)} of {len(ran)} tests pass twice ({flaky} flaky, "
        f"{len(first) - len(ran)} skipped); suite {seconds:.1f} s")
    if len(passing) < policy.min_passing:
        raise GoldRejected(f"{what}: only {len(passing)} tests pass twice (at least {policy.min_passing} needed)")
    if rate < policy.min_pass_rate:
        failing = sorted(t for t in ran if t not in passing)[:10]
        raise GoldRejected(f"{what}: pass rate {rate:.0%} is under {policy.min_pass_rate:.0%}; failing: {failing}")
    if seconds > policy.max_suite_seconds:
        raise GoldRejected(f"{what}: the suite took {seconds:.0f} s (limit {policy.max_suite_seconds:.0f} s)")
    return passing


def _dockerfile(install: list[str], has_project_files: bool) -> str:
    return "\n".join([
        f"FROM {PYTHON_IMAGE}",
        _APT_LOCAL_SOURCE,
        f"COPY wheelhouse/ {WHEELHOUSE}/",
        f"RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-index --find-links {WHEELHOUSE} "
        + " ".join(shlex.quote(r) for r in install),
        "ENV PATH=/opt/venv/bin:$PATH",
        f"COPY project/ {PROJECT_DIR}/" if has_project_files else f"RUN mkdir -p {PROJECT_DIR}",
        f"WORKDIR {PROJECT_DIR}",
        "",
    ])


def _closest(name: str, modules: tuple[str, ...]) -> str:
    wanted = wheelhouse.canonical(name).replace("-", "_")
    return next((m for m in modules if m.lower() == wanted), None) or \
        next((m for m in modules if m.lower() in wanted), modules[0] if modules else wanted)


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)


def save_gold(gold: GoldEnvironment, folder: Path) -> Path:
    """Write gold.toml, environment/ (Dockerfile + context, wheelhouse included) and tests/, atomically."""
    folder = Path(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=_parent(folder)))
    probe = {k: v for k, v in vars(gold.probe).items() if k != "distributions"}
    probe["distributions"] = [vars(d) for d in gold.probe.distributions]
    document: dict[str, Any] = {
        "project": gold.project, "version": gold.version, "image": gold.image, "passing": list(gold.passing),
        "environment": {"network": gold.environment.network},
        "tests": {key: value for key, value in vars(gold.tests).items() if key != "files"},
        "probe": _plain(probe)}
    (staging / "gold.toml").write_text(tomli_w.dumps(document))
    _write_tree(staging / "environment", {"Dockerfile": gold.environment.dockerfile.encode(),
                                          **gold.environment.files})
    _write_tree(staging / "tests", dict(gold.tests.files))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def load_gold(folder: Path) -> GoldEnvironment:
    folder = Path(folder)
    data = tomllib.loads((folder / "gold.toml").read_text())
    context = wheelhouse.read_tree(folder / "environment")
    dockerfile = context.pop("Dockerfile").decode()
    probe = dict(data["probe"])
    distributions = tuple(Distribution(d["name"], d["version"], tuple(d["top_level"]), tuple(d["files"]))
                          for d in probe.pop("distributions"))
    probe = {k: tuple(v) if isinstance(v, list) else v for k, v in probe.items()}
    return GoldEnvironment(
        data["project"], data["version"], data["image"],
        Environment(dockerfile, context, network=data["environment"]["network"]),
        _tests(data["tests"], wheelhouse.read_tree(folder / "tests")), tuple(data["passing"]),
        GoldProbe(distributions=distributions, **probe))


def _tests(fields: dict[str, Any], files: dict[str, bytes]) -> Tests:
    fields = {key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()}
    if "command" in fields and "python" not in fields:  # a recipe saved before the trusted runner
        fields["runner"] = "script"
    return Tests(files=files, **fields)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, for the TOML writer."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent
