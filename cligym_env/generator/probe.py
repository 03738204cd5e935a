"""Probe a gold container for the facts breakage operators aim at: interpreter, distributions, .so files, libraries,
and what one run of the suite really used (`usage.py`).

Facts are read from the running image (importlib.metadata, ldd), not assumed from the recipe, so an operator that
breaks "the library _ssl links to" names a file that really exists there. Test imports are parsed on the host.
"""

from __future__ import annotations

import ast
import json
from pathlib import PurePosixPath

from cligym_env.generator.types import Distribution, GoldProbe
from cligym_env.generator.usage import record_usage
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks.task import Tests
from cligym_env.error import ProbeError

WHEELHOUSE = "/opt/wheelhouse"
APT_ARCHIVES = "/var/cache/apt/archives"
_WORK = "/tmp/cligym-probe"

# Runs inside the container with the venv's python; writes its findings as JSON to argv[1].
_SCRIPT = r"""
import glob, importlib.metadata as md, json, os, platform, subprocess, sys, sysconfig

site, stdlib = sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]

def top_level(dist, files):
    named = (dist.read_text("top_level.txt") or "").split()
    if named:
        return sorted(set(named))
    inside = [os.path.relpath(f, site) for f in files if f.startswith(site + os.sep) and f.endswith((".py", ".so"))]
    return sorted({p.split(os.sep)[0].split(".")[0] for p in inside} - {"__pycache__"})

dists = []
for dist in md.distributions(path=[site]):
    files = sorted(os.path.normpath(str(dist.locate_file(f))) for f in dist.files or [])
    dists.append({"name": dist.metadata["Name"], "version": dist.version,
                  "top_level": top_level(dist, files), "files": files})
extensions = sorted(f for d in dists for f in d["files"] if f.endswith(".so"))
linked = [os.path.realpath(sys.executable), *glob.glob(os.path.join(stdlib, "lib-dynload", "*.so")), *extensions]
ldd = subprocess.run(["ldd", *linked], capture_output=True, text=True).stdout
libraries = set()
for line in ldd.splitlines():
    words = line.replace("=>", " ").split()
    path = next((w for w in words if w.startswith("/") and not w.endswith(":")), None)
    if path and not path.startswith((site, sys.prefix + os.sep)):
        libraries.add(path)
has_repo = os.path.exists(os.path.join(sys.argv[2], "Packages"))
json.dump({"python": sys.executable, "python_version": platform.python_version(), "site_packages": site,
           "stdlib": stdlib, "distributions": sorted(dists, key=lambda d: d["name"].lower()),
           "extension_modules": extensions, "shared_libraries": sorted(libraries),
           "wheelhouse": sys.argv[3] if glob.glob(os.path.join(sys.argv[3], "*.whl")) else "",
           "apt_archives": sys.argv[2] if has_repo and glob.glob(os.path.join(sys.argv[2], "*.deb")) else ""},
          open(sys.argv[1], "w"))
"""


def probe_gold(sandbox: Sandbox, gold_tests: Tests, project_module: str) -> GoldProbe:
    """Run the probe script in the gold container (through its shell), add the test files' imports, then record
    what a hooked run of the suite uses (this changes the container: call it last on a throwaway one)."""
    sandbox.put_files(_WORK, {"probe.py": _SCRIPT.encode()})
    result = sandbox.run(f"python {_WORK}/probe.py {_WORK}/probe.json {APT_ARCHIVES} {WHEELHOUSE}", timeout=120)
    report = sandbox.read_file(f"{_WORK}/probe.json")
    sandbox.run(f"rm -rf {_WORK}")
    if result.exit_code != 0 or report is None:
        raise ProbeError(f"the probe failed in {sandbox.image} (exit {result.exit_code}): {result.output[-2000:]}")
    facts = json.loads(report)
    distributions = tuple(Distribution(d["name"], d["version"], tuple(d["top_level"]), tuple(d["files"]))
                          for d in facts.pop("distributions"))
    libraries = tuple(facts.pop("shared_libraries"))
    test_imports = parse_test_imports(gold_tests)
    usage = record_usage(sandbox, gold_tests, facts["site_packages"], libraries, (project_module, *test_imports))
    return GoldProbe(
        project_module=project_module, distributions=distributions, test_imports=test_imports,
        extension_modules=tuple(facts.pop("extension_modules")), shared_libraries=libraries, **facts, **usage)


def parse_test_imports(tests: Tests) -> tuple[str, ...]:
    """Top-level modules the test files import absolutely, less the test folder's own modules."""
    local = {PurePosixPath(tests.directory).name}
    local |= {PurePosixPath(path).parts[0].removesuffix(".py") for path in tests.files}
    imported: set[str] = set()
    for path, data in tests.files.items():
        if not path.endswith(".py"):
            continue
        try:
            tree = ast.parse(data, filename=path)
        except (SyntaxError, ValueError):
            continue  # e.g. a deliberately broken fixture file
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    return tuple(sorted(imported - local))
