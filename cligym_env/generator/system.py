"""The Debian packages a project's compiled modules need in the gold image: the shared libraries they link to,
those libraries' headers, and a C compiler with Python's headers, so breakages of the system around Python
(a library removed, a header missing, the toolchain gone) are real and repairable from the kept .deb files.

The project's wheel is built on the host, which runs the image's Debian release, so `ldd` and `dpkg -S` there
name the same packages the image installs.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

TOOLCHAIN = ("gcc", "libc6-dev", "python3-dev")  # to build the project (or a dependency) from source again
_BASE = {"libc6", "libgcc-s1", "libstdc++6", "libpython3.11", "libpython3.11-minimal", "libpython3.11-stdlib"}


def system_packages(wheel: Path) -> tuple[str, ...]:
    """() for a pure wheel; else the toolchain, and the runtime and -dev packages of every library it links to."""
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory(prefix="cligym-so-") as scratch:
        modules = [n for n in archive.namelist() if re.search(r"\.so(\.|$)", n.rsplit("/", 1)[-1])]
        if not modules:
            return ()
        libraries: set[str] = set()
        for name in modules:
            libraries |= _linked(Path(archive.extract(name, scratch)))
    packages = dict.fromkeys(TOOLCHAIN)
    for library in sorted(libraries):
        runtime = _owner(library)
        if not runtime or runtime in _BASE:
            continue
        packages[runtime] = None
        development = next(filter(None, map(_owner, _development_links(library))), None)
        if development:
            packages[development] = None
    logger.info("%s has compiled modules: the gold image gets %s", wheel.name, " ".join(packages))
    return tuple(packages)


def _linked(module: Path) -> set[str]:
    try:
        run = subprocess.run(["ldd", str(module)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"=> (/\S+)", run.stdout))


def _development_links(library: str) -> list[str]:
    """Where the unversioned `.so` link of a -dev package would be (libyaml-0.so.2 -> libyaml-0.so, libyaml.so)."""
    folder, name = library.rsplit("/", 1)
    stem = name.split(".so")[0]
    return [f"{folder}/{stem}.so", f"{folder}/{re.sub(r'-[0-9.]+$', '', stem)}.so"]


def _owner(path: str) -> str | None:
    """The Debian package that installed `path` (merged /usr or not), without its architecture."""
    candidates = [path, path.replace("/usr/lib/", "/lib/", 1) if path.startswith("/usr/lib/") else f"/usr{path}"]
    for candidate in candidates:
        try:
            run = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if run.returncode == 0 and ":" in run.stdout:
            return run.stdout.split(":")[0].split(",")[0].strip()
    return None
