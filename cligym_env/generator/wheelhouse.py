"""A project's code, fetched on the host: its sdist (which carries the test suite) and a wheelhouse.

Containers here cannot reach PyPI (HTTPS fails inside them), and repairs must work offline, so every wheel
the gold venv installs is gathered on the host for CPython 3.11 on x86-64 Linux and copied into the image.
Both are cached per project and version under `paths.cache_dir()`, so a second gold build downloads nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import IO

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from cligym_env import paths
from cligym_env.error import ProjectNotFound, WheelhouseError
from cligym_env.generator import index

# The image's interpreter (Debian bookworm's python3), exactly: a release may require ">=3.11.5", and pip on the
# host only checks Requires-Python against the host's own 3.11.x.
PYTHON_VERSION = "3.11.2"
ABI = "cp" + "".join(PYTHON_VERSION.split(".")[:2])
# Bookworm has glibc 2.36, so any manylinux wheel up to 2.36 runs. pip does not widen a given manylinux tag to
# older ones (except manylinux2014 to 2010 and 1), so every tag is named; linux_x86_64 admits wheels built here.
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)), "manylinux2014_x86_64", "linux_x86_64")
logger = logging.getLogger(__name__)


def canonical(name: str) -> str:
    return canonicalize_name(name)


def latest_version(name: str) -> str:
    """The newest release on the index that runs on the image's Python (pip's own resolver and JSON report, so the
    machine's index settings apply)."""
    report, error = _report([name], "--no-deps")
    try:
        return report["install"][0]["metadata"]["version"]
    except (TypeError, KeyError, IndexError):
        raise ProjectNotFound(f"project {name!r} was not found on the package index (or no release of it runs on "
                              f"Python {PYTHON_VERSION}): {error}") from None


def fetch_sdist(name: str, version: str) -> Path:
    """Download (once) the source distribution of `name==version`; it carries the tests the wheel lacks."""
    folder = paths.cache_dir() / "sdists" / f"{canonical(name)}-{version}"
    found = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.zip"))
    if found:
        return found[0]
    fetched = _sdist_from_index(name, version, folder)
    if fetched is not None:
        return fetched
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as scratch:
        run = _pip("download", "--no-deps", "--no-binary", name, "--dest", scratch, f"{name}=={version}")
        files = list(Path(scratch).iterdir())
        if run.returncode != 0 and not files:
            raise ProjectNotFound(f"no source distribution of {name}=={version} on the package index "
                                  f"(an sdist is needed for its tests; or give one with --source): {_error(run)}")
        if run.returncode != 0 or len(files) != 1:
            raise WheelhouseError(f"downloading the sdist of {name}=={version} failed: {_error(run)}")
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(files[0], folder / files[0].name))


def _sdist_from_index(name: str, version: str, folder: Path) -> Path | None:
    """The release's sdist straight from the index (`generator.index`), a .tar.gz before a .zip; None if it
    cannot tell (then pip is asked)."""
    wanted = Version(version)
    for filename in sorted(index.files(name), key=lambda f: not f.endswith(".tar.gz")):
        try:
            if filename.endswith((".tar.gz", ".zip")) and parse_sdist_filename(filename)[1] == wanted:
                return index.fetch(name, filename, folder)
        except (InvalidSdistFilename, InvalidVersion):
            continue
    return None


def build_wheel(name: str, version: str, source: Path) -> Path:
    """Build the project's own wheel on the host (cached), so the image installs what was tested.

    `source` is its sdist, another archive or a checkout folder (`--source`); the cache is keyed by where it is."""
    stamp = f"{Path(source).resolve()}:{Path(source).stat().st_mtime_ns}"
    folder = (paths.cache_dir() / "wheels"
              / f"{canonical(name)}-{version}-{hashlib.sha256(stamp.encode()).hexdigest()[:8]}")
    found = sorted(folder.glob("*.whl"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as scratch:
        run = _pip("wheel", "--no-deps", "--wheel-dir", scratch, str(source))
        wheels = list(Path(scratch).glob("*.whl"))
        if run.returncode != 0 or len(wheels) != 1:
            raise WheelhouseError(f"building a wheel of {name}=={version} from {Path(source).name} failed: "
                                  f"{_error(run)}")
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(wheels[0], folder / wheels[0].name))


def strip_wheel(wheel: Path, prefix: str) -> Path:
    """A copy of `wheel` without the files under `prefix` (tests inside the package), RECORD to match (cached)."""
    folder = wheel.parent / f"stripped-{prefix.replace('/', '-')}"
    target = folder / wheel.name
    if target.exists():
        return target
    folder.mkdir(exist_ok=True)
    partial = folder / f".{wheel.name}"
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as sink:
        for item in source.infolist():
            if item.filename.startswith(f"{prefix}/"):
                continue
            data = source.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(
                    f"{prefix}/".encode()))
            sink.writestr(item, data)
    partial.rename(target)
    return target


def wheel_metadata(wheel: Path | IO[bytes]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extras the wheel declares, its importable top-level names), read from the wheel itself (a file or bytes)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        extras = tuple(Parser().parsestr(archive.read(metadata).decode()).get_all("Provides-Extra") or ())
        top_level = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
        modules = set(archive.read(top_level).decode().split()) if top_level else {
            n.split("/")[0] if "/" in n else n.split(".")[0] for n in names
            if ("/" in n or n.endswith((".py", ".so"))) and not n.split("/")[0].endswith((".dist-info", ".data"))}
    return extras, tuple(sorted(m for m in modules if "/" not in m))


def closest_module(name: str, modules: tuple[str, ...]) -> str:
    """Of a wheel's top-level `modules`, the one the project `name` is imported as."""
    wanted = canonical(name).replace("-", "_")
    return next((m for m in modules if m.lower() == wanted), None) or \
        next((m for m in modules if m.lower() in wanted), modules[0] if modules else wanted)


def build_wheelhouse(name: str, version: str, project_wheel: Path, extras: tuple[str, ...],
                     required: list[str], wishes: list[str] = ()) -> tuple[Path, tuple[str, ...]]:
    """Every wheel the venv installs: the project's own (with `extras`), `required`, the `wishes` that resolve
    beside them (others are dropped, logged), and all their deps; returns (folder, the wishes kept).

    pip resolves on the host (CPython 3.11 on Linux x86-64, like the image) and reports its choice as JSON; the
    chosen versions are then downloaded for manylinux, and a dependency that ships only an sdist is built here,
    accepted only if it is pure Python (a compiled one built here might not load in the image).
    """
    key = hashlib.sha256(repr((project_wheel.name, extras, required, wishes, PLATFORMS)).encode()).hexdigest()[:12]
    folder = paths.cache_dir() / "wheelhouses" / f"{canonical(name)}-{version}-{key}"
    if (folder / ".complete").exists():
        return folder, tuple(json.loads((folder / ".complete").read_text()))
    scratch = Path(tempfile.mkdtemp(dir=scratch_dir()))
    try:
        shutil.copy2(project_wheel, scratch)
        project = str(scratch / project_wheel.name) + (f"[{','.join(extras)}]" if extras else "")
        base = [project, *required]
        report, error = _resolve(scratch, base)
        if report is None:
            raise WheelhouseError(f"the requirements of {name}=={version} cannot be resolved: {error}")
        kept = _resolvable(scratch, base, list(wishes))
        if set(kept) != set(wishes):
            logger.info("%s: declared test requirements left out (they do not resolve): %s", name,
                        ", ".join(w for w in wishes if w not in kept))
        report = _resolve(scratch, [*base, *kept])[0] if kept else report
        _download(report, scratch)
        (scratch / ".complete").write_text(json.dumps(list(kept)))
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder, tuple(kept)


def _resolve(scratch: Path, requirements: list[str]) -> tuple[dict | None, str]:
    """(pip's JSON installation report for `requirements` on this host, or None if they do not resolve; pip's error)."""
    return _report(requirements, "--find-links", str(scratch))


def _report(requirements: list[str], *options: str, rounds: int = 4) -> tuple[dict | None, str]:
    """pip's JSON installation report (or None) and its error, with no release the image's Python cannot run.

    pip 23 refuses --python-version in a dry run, so a chosen release whose Requires-Python excludes
    `PYTHON_VERSION` is capped at the newest release that admits it, and pip is asked again."""
    caps: list[str] = []
    for _ in range(rounds):
        run = _pip("install", "--dry-run", "--ignore-installed", "-q", *options, "--report", "-", *requirements, *caps)
        try:
            report = json.loads(run.stdout) if run.returncode == 0 else None
        except ValueError:
            report = None
        if report is None:
            return None, _error(run)
        too_new = [item["metadata"] for item in report.get("install", [])
                   if not _runs_on_image(item["metadata"].get("requires_python"))]
        if not too_new:
            return report, ""
        capped = [_cap(metadata["name"], metadata["version"]) for metadata in too_new]
        logger.info("not for Python %s (Requires-Python), asking pip again with %s", PYTHON_VERSION, ", ".join(capped))
        caps += capped
    return None, f"no releases for Python {PYTHON_VERSION} found in {rounds} rounds (capped: {', '.join(caps)})"


def _cap(name: str, version: str) -> str:
    """`name<=` the newest release whose Requires-Python admits the image's Python (`pip index versions` takes
    --python-version, where a dry-run install does not), else `name<` the `version` that does not admit it."""
    run = _pip("index", "versions", name, "--python-version", PYTHON_VERSION)
    found = re.search(rf"^{re.escape(name)} \(([^)\s]+)\)$", run.stdout, flags=re.MULTILINE | re.IGNORECASE)
    return f"{name}<={found.group(1)}" if run.returncode == 0 and found else f"{name}<{version}"


def _runs_on_image(requires_python: str | None) -> bool:
    try:
        return SpecifierSet(requires_python or "").contains(PYTHON_VERSION)
    except InvalidSpecifier:  # pip itself ignores a malformed Requires-Python
        return True


def _resolvable(scratch: Path, base: list[str], wishes: list[str]) -> list[str]:
    """The wishes that resolve together with `base`, found by halving (few resolver runs when most resolve)."""
    if not wishes or _resolve(scratch, [*base, *wishes])[0] is not None:
        return wishes
    if len(wishes) == 1:
        return []
    left = _resolvable(scratch, base, wishes[:len(wishes) // 2])
    return left + _resolvable(scratch, [*base, *left], wishes[len(wishes) // 2:])


def _download(report: dict, scratch: Path) -> None:
    """The wheels of the report's choice, for the image's platform; pure wheels built for sdist-only ones."""
    target = ["--only-binary", ":all:", "--python-version", PYTHON_VERSION, "--implementation", "cp",
              "--abi", ABI, *(f"--platform={p}" for p in PLATFORMS)]
    pins, sources = [], []
    for item in report.get("install", []):
        url = item.get("download_info", {}).get("url", "")
        if url.startswith("file:") and scratch.as_posix() in url:
            continue  # the project's own wheel, already there
        pin = f"{item['metadata']['name']}=={item['metadata']['version']}"
        (pins if url.endswith(".whl") else sources).append(pin)
    if pins:
        run = _pip("download", "--no-deps", *target, "--dest", str(scratch), *pins)
        if run.returncode != 0:
            raise WheelhouseError(f"downloading the wheels {' '.join(pins)} failed: {_error(run)}")
    for pin in sources:
        _build_pure_wheel(pin, scratch)


def _build_pure_wheel(requirement: str, folder: Path) -> None:
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as scratch:
        run = _pip("wheel", "--no-deps", "--wheel-dir", scratch, requirement)
        wheels = list(Path(scratch).glob("*.whl"))
        if run.returncode != 0 or len(wheels) != 1:
            raise WheelhouseError(f"{requirement} has no wheel for CPython {PYTHON_VERSION} on Linux x86-64 and "
                                  f"building one failed: {_error(run)}")
        if not wheels[0].name.endswith("-none-any.whl"):
            raise WheelhouseError(f"{requirement} has no wheel for CPython {PYTHON_VERSION} on Linux x86-64 and "
                                  f"is not pure Python ({wheels[0].name}); a host build might not load in the image")
        shutil.move(wheels[0], folder / wheels[0].name)


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def _error(run: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (run.stderr + run.stdout).splitlines() if line.startswith("ERROR")]
    return " ".join(lines)[-800:] or (run.stderr + run.stdout).strip()[-800:]


def scratch_dir() -> Path:
    folder = paths.cache_dir() / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
