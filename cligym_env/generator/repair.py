"""The gold run's own errors turned into the next attempt: a missing module installed, a missing plugin installed or
its options neutralised, and, when nothing more can be installed, the test modules that still fail to import left out.

Each round changes the plan or says the suite is as stable as it gets (None); the caller bounds the rounds.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from packaging.utils import canonicalize_name

logger = logging.getLogger(__name__)

# Import names whose distribution is named otherwise (anything else: the import name itself is tried).
DISTRIBUTIONS = {
    "yaml": "PyYAML", "dateutil": "python-dateutil", "attr": "attrs", "bs4": "beautifulsoup4", "PIL": "Pillow",
    "google": "protobuf", "dns": "dnspython", "jwt": "PyJWT", "OpenSSL": "pyOpenSSL", "Crypto": "pycryptodome",
    "magic": "python-magic", "serial": "pyserial", "sklearn": "scikit-learn", "cv2": "opencv-python-headless",
    "typing_extensions": "typing-extensions", "pkg_resources": "setuptools", "setuptools": "setuptools",
    "docutils": "docutils", "toml": "toml", "dotenv": "python-dotenv", "slugify": "python-slugify",
    "jose": "python-jose", "multipart": "python-multipart", "zmq": "pyzmq", "git": "GitPython",
    "markdown": "Markdown", "lxml": "lxml", "simplejson": "simplejson", "hamcrest": "PyHamcrest",
    "faker": "Faker", "nacl": "PyNaCl", "mock": "mock", "py": "py", "xdist": "pytest-xdist",
    "pytest_cov": "pytest-cov", "Levenshtein": "levenshtein", "msgpack": "msgpack", "tz": "tzdata",
}
# Command-line options, markers and fixtures that belong to well-known pytest plugins.
OPTION_PLUGINS = {"--cov": "pytest-cov", "--no-cov": "pytest-cov", "--timeout": "pytest-timeout",
                  "-n": "pytest-xdist", "--numprocesses": "pytest-xdist", "--dist": "pytest-xdist",
                  "--benchmark": "pytest-benchmark", "--reruns": "pytest-rerunfailures", "--asyncio": "pytest-asyncio",
                  "--doctest-plus": "pytest-doctestplus", "--hypothesis": "hypothesis", "--mypy": "pytest-mypy",
                  "--randomly": "pytest-randomly", "-p": "", "--html": "pytest-html", "--mpl": "pytest-mpl",
                  "--flake8": "pytest-flake8", "--black": "pytest-black", "--env": "pytest-env"}
MARKER_PLUGINS = {"asyncio": "pytest-asyncio", "trio": "pytest-trio", "timeout": "pytest-timeout",
                  "benchmark": "pytest-benchmark", "flaky": "flaky", "django_db": "pytest-django",
                  "freeze_time": "pytest-freezer", "httpx_mock": "pytest-httpx", "vcr": "pytest-recording",
                  "mypy_testing": "pytest-mypy-testing", "anyio": "anyio"}
FIXTURE_PLUGINS = {"mocker": "pytest-mock", "benchmark": "pytest-benchmark", "httpserver": "pytest-httpserver",
                   "freezer": "pytest-freezer", "time_machine": "time-machine", "aiohttp_client": "pytest-aiohttp",
                   "event_loop": "pytest-asyncio", "snapshot": "syrupy", "requests_mock": "requests-mock",
                   "httpbin": "pytest-httpbin", "subtests": "pytest-subtests", "datadir": "pytest-datadir",
                   "shared_datadir": "pytest-datadir", "fs": "pyfakefs", "monkeypatch_session": "",
                   "caplog": "", "respx_mock": "respx", "httpx_mock": "pytest-httpx", "tmp_path_factory": ""}


@dataclass(frozen=True)
class Plan:
    """What the next gold build installs and how it runs the suite; `tried` remembers every distribution asked for."""

    requirements: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # test files left out because they still fail to import (recorded in the recipe)
    tried: frozenset[str] = frozenset()

    def add(self, requirement: str) -> Plan:
        return replace(self, requirements=(*self.requirements, requirement),
                       tried=self.tried | {canonicalize_name(requirement)})


def next_plan(plan: Plan, output: str, local: set[str]) -> Plan | None:
    """The plan the gold run's `output` asks for, or None when it asks for nothing new.

    `local` are top-level names that are the suite's own or the project's (never installed from the index)."""
    wanted = _wanted(output, local)
    new = [w for w in wanted if w and canonicalize_name(w) not in plan.tried]
    if new:
        logger.info("the gold run asks for %s", ", ".join(new))
        for requirement in new:
            plan = plan.add(requirement)
        return plan
    if "Missing required plugins:" in output and "required_plugins=" not in " ".join(plan.pytest_args):
        # installed, yet missing: the grader loads plugins by module, never by entry point, which this check counts
        logger.info("pytest's required_plugins are installed but not loaded by entry point: the check is lifted")
        return replace(plan, pytest_args=(*plan.pytest_args, "-o", "required_plugins="))
    refused = re.search(r"error: unrecognized arguments: (.*)", output)
    if refused and "addopts=" not in " ".join(plan.pytest_args):
        logger.info("pytest refuses options of its configuration (%s): addopts neutralised", refused.group(1).strip())
        return replace(plan, pytest_args=(*plan.pytest_args, "-o", "addopts="))
    plugin = re.search(r"(?:Error importing plugin|ImportError while loading plugin|no plugin named) \"?'?([\w.\-]+)",
                       output)
    if plugin and f"no:{plugin.group(1)}" not in plan.pytest_args:
        logger.info("plugin %s cannot be loaded: disabled", plugin.group(1))
        return replace(plan, pytest_args=(*plan.pytest_args, "-p", f"no:{plugin.group(1)}"))
    # `-p NAME` in addopts beats `-p no:NAME`, and loads by entry-point name a plugin the grader loads by module
    clash = plugin or "Plugin already registered under a different name" in output
    if clash and "addopts=" not in " ".join(plan.pytest_args):
        logger.info("pytest's configuration loads plugins that cannot be loaded so: addopts neutralised")
        return replace(plan, pytest_args=(*plan.pytest_args, "-o", "addopts="))
    typed = re.search(r"config option '(\w+)' expects .*?, got str: '([^']*)'", output)
    if typed and f"{typed.group(1)}=" not in " ".join(plan.pytest_args):
        logger.info("a [tool.pytest] option is a string where pytest wants another type: given as -o %s=%s",
                    *typed.groups())  # `-o` values are ini strings, which pytest converts
        return replace(plan, pytest_args=(*plan.pytest_args, "-o", f"{typed.group(1)}={typed.group(2)}"))
    if "async def functions are not natively supported" in output and "asyncio_mode=auto" not in plan.pytest_args:
        logger.info("async tests without markers: pytest-asyncio in auto mode")
        return replace(plan, pytest_args=(*plan.pytest_args, "-o", "asyncio_mode=auto"))
    broken = [path for path in dict.fromkeys(re.findall(r"^ERROR (\S+\.py)(?: -|$)", output, flags=re.M))
              if path not in plan.ignored]
    if broken:
        logger.info("left out, still failing to import: %s", ", ".join(broken))
        return replace(plan, ignored=(*plan.ignored, *broken),
                       pytest_args=(*plan.pytest_args, *(f"--ignore={path}" for path in broken)))
    return None


def _wanted(output: str, local: set[str]) -> list[str]:
    """Distributions the output says are missing, in order of first mention."""
    wanted: list[str] = []
    for module in re.findall(r"No module named '?([\w.]+)'?", output):
        top = module.split(".")[0]
        if top not in local and not top.startswith("_"):
            wanted.append(DISTRIBUTIONS.get(top, top.replace("_", "-")))
    for option in re.findall(r"error: unrecognized arguments: (.*)", output):
        wanted += [OPTION_PLUGINS.get(flag.split("=")[0], "") for flag in option.split()]
        wanted += [plugin for prefix, plugin in OPTION_PLUGINS.items() if prefix.startswith("--")
                   and any(flag.startswith(prefix) for flag in option.split())]
    for listed in re.findall(r"Missing required plugins: (.*)", output):
        wanted += [re.split(r"[<>=!~\[; ]", name.strip(), maxsplit=1)[0] for name in listed.split(",")]
    for marker in re.findall(r"'(\w+)' not found in `markers` configuration option", output):
        wanted.append(MARKER_PLUGINS.get(marker, ""))
    for fixture in re.findall(r"fixture '(\w+)' not found", output):
        wanted.append(FIXTURE_PLUGINS.get(fixture, ""))
    if "async def functions are not natively supported" in output or "pytest.mark.asyncio" in output:
        wanted.append("pytest-asyncio")
    return list(dict.fromkeys(w for w in wanted if w))
