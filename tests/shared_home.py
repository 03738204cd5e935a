"""One CLIGYM_HOME shared by the trainer-adapter test modules (import `cligym_home` to override conftest's).

Grading caches each image's file manifest under `$CLIGYM_HOME/cache` (about a minute to make on a loaded 2-core
machine); these modules grade the same example images, so they share the home a user's runs would share.
Registries are still passed explicitly, so no test reads another's tasks.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cligym_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.getbasetemp() / "trainers-cligym-home"
    monkeypatch.setenv("CLIGYM_HOME", str(home))
    return home
