"""The reward of an exported Harbor task, run by its tests/test.sh with the environment's Python (`-I -B`).

    verdict.py SUMMARY JUNIT EXIT_CODE SELECTED_JSON VERIFIER_DIR

The same rule as cligym's grader: 1 iff every selected test passed, the runner finished (its summary records the
exit status pytest returned) and pytest's exit status agrees with its report. Writes reward.json
({"reward": r, "tests": {id: outcome}}) and reward.txt; test.sh has already written 0 in case this cannot run.
The JUnit reading is cligym's own `junit.py`, shipped beside this file.
"""

import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))


def _junit():
    """Import the shipped junit.py, standing in for the one cligym module it imports."""
    error = types.ModuleType("cligym_env.error")
    error.ReportError = type("ReportError", (ValueError,), {})
    sys.modules.setdefault("cligym_env", types.ModuleType("cligym_env"))
    sys.modules["cligym_env.error"] = error
    sys.path.insert(0, HERE)
    import junit

    return junit


def verdict(summary_path, junit_path, exit_code, selected):
    """(reward, {selected id: outcome})."""
    outcomes = {test: "missing" for test in selected}
    try:
        with open(summary_path) as handle:
            summary = json.load(handle)
        with open(junit_path, "rb") as handle:
            report = _junit().parse_junit(handle.read())
    except (OSError, ValueError):
        return 0.0, outcomes
    outcomes = {test: report.get(test, "missing") for test in selected}
    failed = any(outcome in ("failed", "error") for outcome in report.values())
    trusted = (isinstance(summary, dict) and summary.get("exit_code") == exit_code
               and not (exit_code == 0 and failed) and not (exit_code == 1 and not failed))
    passed = bool(selected) and all(outcome == "passed" for outcome in outcomes.values())
    return (1.0 if trusted and passed else 0.0), outcomes


def main(argv):
    summary, junit_report, code, selected_path, verifier = argv
    with open(selected_path) as handle:
        selected = json.load(handle)
    reward, outcomes = verdict(summary, junit_report, int(code), selected)
    for name, text in (("reward.json", json.dumps({"reward": reward, "tests": outcomes}, indent=1)),
                       ("reward.txt", "%g\n" % reward)):
        partial = os.path.join(verifier, "." + name + ".partial")
        with open(partial, "w") as sink:
            sink.write(text)
        os.replace(partial, os.path.join(verifier, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
