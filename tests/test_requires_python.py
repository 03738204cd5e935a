"""Releases are chosen for the image's Python (3.11.2), not for the host's later 3.11.x that pip runs on.

A release that requires ">=3.11.5" resolves on the host but fails the gold image's `pip install`."""

from __future__ import annotations

import json
import subprocess

from packaging.specifiers import SpecifierSet

from cligym_env.generator import wheelhouse


def _ran(stdout: str, returncode: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], returncode, stdout=stdout, stderr="")


def _report(*metadata: dict) -> str:
    return json.dumps({"install": [{"metadata": m} for m in metadata]})


def test_a_release_too_new_for_the_image_is_capped_at_the_newest_that_admits_it(monkeypatch) -> None:
    asked = []

    def pip(*args: str) -> subprocess.CompletedProcess[str]:
        asked.append(args)
        if args[0] == "index":
            return _ran("demo (2.10)\nAvailable versions: 2.10, 2.9\n")
        if "demo<=2.10" in args:
            return _ran(_report({"name": "demo", "version": "2.10", "requires_python": ">=3.8"}))
        return _ran(_report({"name": "demo", "version": "4.1.3", "requires_python": ">=3.11.5"}))

    monkeypatch.setattr(wheelhouse, "_pip", pip)
    assert wheelhouse.latest_version("demo") == "2.10"
    assert asked[1] == ("index", "versions", "demo", "--python-version", wheelhouse.PYTHON_VERSION)


def test_without_pip_index_the_cap_is_below_the_release_that_does_not_run(monkeypatch) -> None:
    monkeypatch.setattr(wheelhouse, "_pip", lambda *args: _ran("", 1) if args[0] == "index" else
                        _ran(_report({"name": "demo", "version": "4", "requires_python": ">=3.12"})))
    report, error = wheelhouse._report(["demo"], rounds=2)
    assert report is None and "demo<4" in error and wheelhouse.PYTHON_VERSION in error


def test_releases_chosen_from_the_real_index_all_run_on_the_image_python() -> None:
    """soupsieve's newest releases on the index need a later Python than bookworm's; whatever the index holds
    on the day, every release chosen (the project's, and its dependencies') must admit the image's."""
    version = wheelhouse.latest_version("soupsieve")
    report, error = wheelhouse._report([f"soupsieve=={version}", "pytest"])
    assert report is not None, error
    for item in report["install"]:
        assert wheelhouse.PYTHON_VERSION in SpecifierSet(item["metadata"].get("requires_python") or ""), item
