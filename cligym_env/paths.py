"""Where cligym keeps its registry and caches: `$CLIGYM_HOME`, else a per-user default.

Caches (downloads, image manifests, harness wheels) are content-addressed, so several homes may share one:
`$CLIGYM_CACHE` puts it elsewhere (the test suite shares one cache across its per-test homes).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    configured = os.environ.get("CLIGYM_HOME")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "cligym"


def registry_dir() -> Path:
    return home() / "tasks"


def cache_dir() -> Path:
    configured = os.environ.get("CLIGYM_CACHE")
    return Path(configured).expanduser() if configured else home() / "cache"
