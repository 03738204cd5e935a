"""Layers point one way: importing any module of `cligym_env` never imports `agents`."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import importlib, json, pkgutil, sys
import cligym_env
failed = {}
for module in pkgutil.walk_packages(cligym_env.__path__, "cligym_env."):
    try:
        importlib.import_module(module.name)
    except ImportError as error:  # an optional extra (vllm, openai) that is not installed
        failed[module.name] = str(error)
print(json.dumps({"agents": sorted(m for m in sys.modules if m == "agents" or m.startswith("agents.")),
                  "imported": sorted(m for m in sys.modules if m.startswith("cligym_env")), "failed": failed}))
"""


def test_cligym_env_never_imports_agents():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["agents"] == [], found["agents"]
    assert {"cligym_env.cli", "cligym_env.env", "cligym_env.generator.command", "cligym_env.grading.grader",
            "cligym_env.runtime.shell"} <= set(found["imported"]), found["failed"]
