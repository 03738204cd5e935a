"""How many popular PyPI projects, with no per-project entries, build a gold environment: now and in a baseline.

Run: `.venv/bin/python benchmarks/gold_coverage.py [--projects a,b,...] [--baseline /path/to/older/checkout]`.
Each project is built in its own process (one at a time, so the numbers hold on a loaded machine) with an empty
projects.toml (or, with `--entries`, the shipped one: for projects such as psutil whose entry leaves out slow tests),
under `--home` (a CLIGYM_HOME of its own per side, so nothing is shared with a normal run). Results
are kept in `<home>/coverage.json`, so a rerun resumes. Prints "built N of M" per side and each project's reason.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Popular pure-Python projects that ship tests in their sdist and are not in projects.toml, chosen for spread:
# tests in the package (toolz, pytz, python-dateutil, colorama, mock), root test files (six, inflection, schema),
# declared only in tox.ini / requirements files (itsdangerous, arrow, tenacity), addopts needing plugins (semver).
PROJECTS = ("six", "toolz", "pytz", "pyasn1", "idna", "itsdangerous", "arrow", "humanize", "pyparsing", "wcwidth",
            "python-dateutil", "colorama", "semver", "tenacity", "jmespath", "inflection", "schema", "asgiref",
            "mock", "xmltodict")
_BUILD = """
import json, sys
from cligym_env.generator import gold
from cligym_env.runtime.docker_client import connect
try:
    options = {"options": gold.GoldOptions(projects=sys.argv[2])} if hasattr(gold, "GoldOptions") else \\
        {"projects": sys.argv[2]}
    built = gold.build_gold(sys.argv[1], client=connect(), **options)
    print(json.dumps({"built": True, "reason": f"{len(built.passing)} tests pass"}))
except Exception as error:
    print(json.dumps({"built": False, "reason": f"{type(error).__name__}: {error}".splitlines()[0][:200]}))
"""


def measure(code: Path, home: Path, projects: list[str], timeout: float, entries: bool = False) -> dict[str, dict]:
    """Build each project's gold environment with the code at `code`; resume from `home`/coverage.json."""
    home.mkdir(parents=True, exist_ok=True)
    record = home / "coverage.json"
    results = json.loads(record.read_text()) if record.exists() else {}
    projects_file = code / "cligym_env" / "generator" / "projects.toml"
    if not entries:
        projects_file = home / "projects.toml"
        projects_file.write_text("[defaults]\n")
    for name in projects:
        if name in results:
            continue
        env = {**os.environ, "CLIGYM_HOME": str(home), "PYTHONPATH": str(code)}
        try:
            run = subprocess.run([sys.executable, "-c", _BUILD, name, str(projects_file)], capture_output=True,
                                 text=True, timeout=timeout, env=env, cwd=code)
            lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
            results[name] = json.loads(lines[-1]) if lines else {"built": False,
                                                                 "reason": run.stderr.strip()[-200:]}
        except subprocess.TimeoutExpired:
            results[name] = {"built": False, "reason": f"no result within {timeout:.0f} s"}
        print(f"  {code.name}: {name}: {results[name]}", flush=True)
        record.write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", default=",".join(PROJECTS))
    parser.add_argument("--baseline", type=Path, default=None, help="an older checkout to compare with")
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "cligym-gold-coverage")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per project")
    parser.add_argument("--entries", action="store_true", help="use the shipped projects.toml, not an empty one")
    args = parser.parse_args()
    projects = [p for p in args.projects.split(",") if p]
    sides = {"now": Path(__file__).resolve().parents[1]}
    if args.baseline:
        sides = {"baseline": args.baseline.resolve(), **sides}
    results = {side: measure(code, args.home / side, projects, args.timeout, args.entries)
               for side, code in sides.items()}
    print(f"\n{'project':<18}" + "".join(f"{side:<60}" for side in sides))
    for name in projects:
        print(f"{name:<18}" + "".join(f"{('built: ' if r[name]['built'] else 'no: ') + r[name]['reason']:<60.58}"
                                      for r in results.values()))
    for side, result in results.items():
        print(f"{side}: built {sum(result[n]['built'] for n in projects)} of {len(projects)}")


if __name__ == "__main__":
    main()
