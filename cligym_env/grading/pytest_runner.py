"""The trusted test runner, executed inside a grading container by the *environment's* interpreter.

Run as `PYTHON -I -B -X pycache_prefix=/nonexistent run.py SUMMARY REPORT WORKDIR ROOTDIR PLUGINS -- ARGS...`:
`-I` keeps PYTHON* variables, the user site and the working directory off `sys.path` (no `pytest.py` shadowing),
`-B` and the empty pycache prefix mean no bytecode planted next to a source file is ever read. pytest comes from
`lib.zip` on the read-only harness volume (with its own bytecode inside), not from the environment, with its
dependencies renamed (`_cligym_pluggy`, ...), so a test that imports `packaging` or `pluggy` gets the environment's
own copy (it may be the project under test, or what the task broke). Plugins are never auto-loaded: only the modules
named in PLUGINS (comma-separated, recorded from the gold environment).

The summary (JSON) says how far the run got; the grader checks it against the JUnit report.
"""

import json
import os
import sys

HARNESS_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib.zip")


def _write(path, document):
    with open(path, "w") as sink:
        json.dump(document, sink)


def _available_plugins():
    """pytest11 entry points of the environment's distributions (used when a gold environment is recorded)."""
    from importlib import metadata

    found = set()
    for dist in metadata.distributions():
        for entry in dist.entry_points:
            if entry.group == "pytest11":
                found.add(entry.value.split(":")[0].strip())
    return sorted(found)


def main(argv):
    summary, report, workdir, rootdir, plugins = argv[:5]
    args = argv[6:] if argv[5:6] == ["--"] else argv[5:]
    state = {"started": True, "exit_code": None, "error": ""}
    _write(summary, state)
    sys.path.insert(0, HARNESS_LIB)  # first, so the environment's own pytest is not the one imported ...
    import pytest

    sys.path.remove(HARNESS_LIB)
    sys.path.append(HARNESS_LIB)  # ... then last: pytest's lazy imports still work, nothing of the env is masked
    try:
        os.chdir(workdir)
    except OSError as error:
        state["error"] = "cannot enter the working directory %s: %s" % (workdir, error)
        _write(summary, state)
        return 3
    if plugins == "?":  # discovery only
        state["available_plugins"] = _available_plugins()
        state["exit_code"] = 0
        _write(summary, state)
        return 0
    fixed = ["-p", "no:cacheprovider", "--color=no", "-o", "junit_family=xunit1", "--junitxml=" + report,
             "--rootdir=" + rootdir, "--continue-on-collection-errors"]
    for plugin in filter(None, plugins.split(",")):
        fixed += ["-p", plugin]
    code = int(pytest.main(fixed + list(args)))
    state["exit_code"] = code
    _write(summary, state)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
