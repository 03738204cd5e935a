"""What every inversion operator shares: the operator type, the targets it samples, and repair snippets.

An operator enumerates every concrete thing it could break in a gold image (its targets, read off the
probe), and turns one target into a `Breakage`: Dockerfile RUN lines plus an offline repair script.
"""

from __future__ import annotations

import base64
import random
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable, Iterator, Sequence

from cligym_env.generator.types import Breakage, Distribution, GoldProbe

# Distributions the test runner itself needs: breaking them fails every test, which makes a poor task.
RUNNER = frozenset({"pip", "setuptools", "wheel", "pytest", "pluggy", "iniconfig", "packaging", "pygments",
                    "exceptiongroup", "tomli", "py", "colorama"})
# Libraries that bash, coreutils, tar and dpkg need: without them no repair can run at all.
ESSENTIAL_LIBRARIES = ("libc.so", "libm.so", "ld-linux", "libpthread", "libdl.so", "librt.so", "libresolv",
                       "libtinfo", "libselinux", "libpcre2-8", "libacl", "libattr", "libbz2", "liblzma", "libzstd",
                       "libz.so", "libmd.so", "libgmp", "libcap.so", "libcrypt.so", "libgcc_s", "libaudit", "libpam")


APT = ("apt_archives",)  # repaired from the kept .deb files
NO_ARCHIVES: tuple[str, ...] = ()  # repaired by hand, no package archive needed
RUNNER_BROKEN = {"breaks_runner": "1"}  # Breakage.extra read by validation: the test runner itself is meant to fail


@dataclass(frozen=True)
class Target:
    """One concrete thing to break; `key` is unique within its operator and `weight` biases sampling."""

    key: str
    data: Any = None
    weight: float = 1.0


@dataclass(frozen=True)
class Draft:
    """A breakage before the operator stamps its name and category on it."""

    target: str
    description: str
    commands: Sequence[str]  # shell commands, joined into one RUN instruction
    repair: Sequence[str]  # shell commands of the oracle repair
    hint: str
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operator:
    name: str
    category: str
    targets: Callable[[GoldProbe], Sequence[Target]]
    make: Callable[[GoldProbe, Target, random.Random], Draft]
    requires: tuple[str, ...] = ("wheelhouse",)  # probe fields the repair needs (a wheelhouse, apt archives)

    def available(self, probe: GoldProbe) -> list[Target]:
        return list(self.targets(probe)) if all(getattr(probe, need) for need in self.requires) else []

    def breakage(self, probe: GoldProbe, target: Target, rng: random.Random) -> Breakage:
        draft = self.make(probe, target, rng)
        return Breakage(operator=self.name, category=self.category, target=draft.target,
                        description=draft.description, dockerfile=run(*draft.commands),
                        solution=script(*draft.repair), hint=draft.hint, extra=dict(draft.extra))

    def breakages(self, probe: GoldProbe, rng: random.Random) -> Iterator[Breakage]:
        """Every target once, in a seeded order that favours heavier targets (weighted sampling without replacement)."""
        order = sorted(self.available(probe), key=lambda t: rng.random() ** (1.0 / t.weight), reverse=True)
        return (self.breakage(probe, target, rng) for target in order)


def run(*commands: str) -> str:
    """One RUN instruction; `set -e` semantics through `&&`, so a failed precondition fails the build."""
    return "RUN " + " \\\n && ".join(commands) + "\n"


def script(*commands: str) -> str:
    header = "#!/usr/bin/env bash\nset -euo pipefail\nexport DEBIAN_FRONTEND=noninteractive\n"
    return header + "\n".join(commands) + "\n"


def q(text: str) -> str:
    return shlex.quote(text)


def write_lines(path: str, lines: Sequence[str], append: bool = False) -> str:
    return f"printf '%s\\n' {' '.join(q(line) for line in lines)} {'>>' if append else '>'} {q(path)}"


def python_program(python: str, source: str, *args: str) -> str:
    """Run a Python program given as text, base64-wrapped so it stays one Dockerfile line."""
    encoded = base64.b64encode(source.encode()).decode()
    return f"echo {encoded} | base64 -d | {python} - {' '.join(q(a) for a in args)}"


# --- facts derived from the probe -------------------------------------------------------------------------

def xy(probe: GoldProbe) -> str:
    return ".".join(probe.python_version.split(".")[:2])


def venv_root(probe: GoldProbe) -> str:
    return str(PurePosixPath(probe.python).parent.parent)


def interpreter(probe: GoldProbe) -> str:
    """The real interpreter binary the venv links to (/usr/lib/python3.11 -> /usr/bin/python3.11)."""
    return f"{PurePosixPath(probe.stdlib).parent.parent}/bin/python{xy(probe)}"


def lib_dir(probe: GoldProbe) -> str:
    """The multiarch library folder, read off where the interpreter's libc lives."""
    libc = next((p for p in probe.shared_libraries if "/libc.so" in p), "/lib/x86_64-linux-gnu/libc.so.6")
    return str(PurePosixPath(libc).parent)


# --- aiming: what the gold suite really used (probe.used_*); a probe without usage (older recipes) aims at all ---

@dataclass(frozen=True)
class _Usage:
    files: frozenset[str]
    folders: frozenset[str]  # every parent folder of a used file
    top_modules: frozenset[str]
    modules: frozenset[str]
    libraries: frozenset[str]


_USAGE: dict[int, tuple[GoldProbe, _Usage]] = {}


def _usage(probe: GoldProbe) -> _Usage:
    cached = _USAGE.get(id(probe))
    if cached is None or cached[0] is not probe:
        files = frozenset(probe.used_files) | frozenset(probe.used_executables)
        folders = frozenset(str(parent) for f in files for parent in PurePosixPath(f).parents)
        modules = frozenset(probe.used_modules)
        cached = (probe, _Usage(files, folders, frozenset(m.split(".")[0] for m in modules), modules,
                                frozenset(probe.used_libraries)))
        _USAGE.clear()
        _USAGE[id(probe)] = cached
    return cached[1]


def used_path(probe: GoldProbe, path: str) -> bool:
    """Did the gold run touch `path` (a file, or a folder holding a used file)? The hook sees Python's own opens
    and imports and the libraries mapped, not C code's opens (/etc/nsswitch.conf): elsewhere it cannot tell: True."""
    if not probe.usage_known:
        return True
    usage = _usage(probe)
    if path in probe.shared_libraries or path in usage.libraries:
        return path in usage.libraries
    places = (probe.site_packages, probe.stdlib, str(PurePosixPath(probe.python).parent))
    if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in places):
        return True
    return path in usage.files or path in usage.folders


def used_module(probe: GoldProbe, name: str) -> bool:
    """Was module `name` (dotted or top-level) imported by the gold run?"""
    return not probe.usage_known or name in _usage(probe).modules or name in _usage(probe).top_modules


def used_event(probe: GoldProbe, *events: str) -> bool:
    """Did the gold run do one of these (audit event names)? True where events were not recorded."""
    return not probe.used_events or any(event in probe.used_events for event in events)


PROCESS_EVENTS = ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.system", "os.spawn")
SOCKET_EVENTS = ("socket.connect", "socket.bind")
LOOKUP_EVENTS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr")


def breakable(probe: GoldProbe) -> list[tuple[Distribution, float]]:
    """Distributions worth breaking, weighted: the project, then what the tests import; never the runner, and
    (where usage was recorded) only those the gold run imported."""
    chosen = []
    for dist in probe.distributions:
        name = dist.name.lower().replace("_", "-")
        if probe.usage_known and not any(used_module(probe, top) for top in dist.top_level):
            continue
        if probe.project_module in dist.top_level:
            chosen.append((dist, 2.0))
        elif name not in RUNNER and not name.startswith("pytest"):
            chosen.append((dist, 2.0 if set(probe.test_imports) & set(dist.top_level) else 1.0))
    return chosen


def module_files(probe: GoldProbe, dist: Distribution) -> list[str]:
    """The importable .py files a distribution installed into site-packages, leaving out its own test suite
    and (where usage was recorded) the modules the gold run never imported."""
    prefix = probe.site_packages.rstrip("/") + "/"
    return [f for f in dist.files if f.startswith(prefix) and f.endswith(".py") and ".dist-info/" not in f
            and not {"tests", "test"} & set(PurePosixPath(f).parts) and not f.endswith("/conftest.py")
            and used_path(probe, f)]


DATA_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pth", ".typed")


def data_files(probe: GoldProbe, dist: Distribution) -> list[str]:
    """Package data (templates, tables, certificates...) the gold run opened: one file a few tests need."""
    prefix = probe.site_packages.rstrip("/") + "/"
    return [f for f in dist.files if probe.usage_known and f.startswith(prefix) and ".dist-info/" not in f
            and "/__pycache__/" not in f and not f.endswith(DATA_SUFFIXES) and f in _usage(probe).files]


def source_targets(probe: GoldProbe) -> list[Target]:
    return [Target(path, (dist, path), weight) for dist, weight in breakable(probe)
            for path in module_files(probe, dist)]


def scripts(probe: GoldProbe, dist: Distribution) -> list[str]:
    bin_dir = str(PurePosixPath(probe.python).parent) + "/"
    return [f for f in dist.files if f.startswith(bin_dir)]


def dist_info(probe: GoldProbe, dist: Distribution) -> str | None:
    return next((str(PurePosixPath(f).parent) for f in dist.files if f.endswith(".dist-info/METADATA")), None)


def drop_bytecode(path: str) -> str:
    """Remove a module's compiled copies, which would otherwise keep the original code around."""
    file = PurePosixPath(path)
    return f"rm -f {q(str(file.parent / '__pycache__'))}/{q(file.stem)}.*.pyc"


# --- repairs a person would type -------------------------------------------------------------------------

def reinstall_wheel(probe: GoldProbe, dist: Distribution) -> str:
    return (f"{probe.python} -m pip install --force-reinstall --no-deps --no-index --find-links {q(probe.wheelhouse)} "
            f"{q(f'{dist.name}=={dist.version}')}")


def reinstall_deb(probe: GoldProbe, path_pattern: str, *dpkg_options: str) -> list[str]:
    """Find the Debian package that owns a path (dpkg -S takes a glob) and reinstall it from the kept archives."""
    options = "".join(f"{o} " for o in dpkg_options)
    return [f"pkg=$(dpkg -S {q(path_pattern)} | head -n1 | cut -d: -f1 | cut -d, -f1)",
            "ver=$(dpkg-query -W -f='${Version}' \"$pkg\")",
            f"dpkg -i {options}{q(probe.apt_archives)}/\"${{pkg}}_${{ver/:/%3a}}_\"*.deb"]


def restore_conffile(probe: GoldProbe, path: str) -> list[str]:
    """Put a package's pristine config file back: remove it, then reinstall with --force-confmiss."""
    return [f"rm -f {q(path)}", *reinstall_deb(probe, path, "--force-confmiss")]


# --- start-up hooks: code every Python process runs, living in a file (ENV cannot be repaired from inside) ---

PTH_NAMES = ("_site_tweaks.pth", "local-settings.pth", "zz_runtime.pth", "00-sitecfg.pth", "devtools-hooks.pth")


def hook_targets(probe: GoldProbe, items: Sequence[str], weight: float = 1.0,
                 modules: Sequence[str] = (), events: Sequence[str] = ()) -> list[Target]:
    """Each item once per place a start-up hook can live: a .pth file, or Debian's sitecustomize (restored from
    its package, so only where the archives are kept). With `modules`, only if the gold run imported one of them
    (a hook on multiprocessing cannot bite a suite that never starts a process); with `events`, only if it raised
    one of those audit events (which, where recorded, say more than modules the runner may have imported too)."""
    if events and probe.used_events:
        if not used_event(probe, *events):
            return []
    elif modules and not any(used_module(probe, m) for m in modules):
        return []
    places = ("pth", "sitecustomize") if probe.apt_archives else ("pth",)
    return [Target(f"{item}@{place}", (item, place), weight) for item in items for place in places]


def hook(probe: GoldProbe, rng: random.Random, place: str, code: str) -> tuple[str, list[str], list[str]]:
    """Install one line of Python (starting with `import`, as .pth files require) that runs at every interpreter
    start. Returns (the file, build commands, repair commands)."""
    if place == "pth":
        path = f"{probe.site_packages}/{rng.choice(PTH_NAMES)}"
        return path, [write_lines(path, [code])], [f"rm -f {q(path)}"]
    path = f"/etc/python{xy(probe)}/sitecustomize.py"
    return path, [f"test -f {q(path)}", write_lines(path, [code], append=True)], restore_conffile(probe, path)


def hook_draft(probe: GoldProbe, rng: random.Random, target: Target, code: str, doing: str, hint: str) -> Draft:
    """A Draft for a start-up-hook breakage: `target.data` is (item, place); `doing` completes "<file> ..."."""
    where, commands, repair = hook(probe, rng, target.data[1], code)
    return Draft(target.key, f"{where} {doing}", commands, repair, hint, {"hook": where})
