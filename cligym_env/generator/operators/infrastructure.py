"""Infrastructure: the system under Python breaks: shared libraries, stdlib extension modules, script
interpreters, the virtual environment itself. Repairs reinstall Debian packages from the kept archives."""

from __future__ import annotations

import random
from pathlib import PurePosixPath
from typing import Iterable

from cligym_env.generator.operators._base import (
    APT, ESSENTIAL_LIBRARIES, NO_ARCHIVES, RUNNER_BROKEN, Draft, Operator, Target, breakable, interpreter, lib_dir,
    q, reinstall_deb, reinstall_wheel, scripts, used_event, used_module, used_path, venv_root, xy, PROCESS_EVENTS)
from cligym_env.generator.types import GoldProbe

CATEGORY = "infrastructure"

# stdlib module the tests may import -> (its compiled extension in lib-dynload, the system library that links)
STDLIB_EXTENSIONS = {
    "ctypes": ("_ctypes", "libffi.so.8"), "sqlite3": ("_sqlite3", "libsqlite3.so.0"), "bz2": ("_bz2", None),
    "lzma": ("_lzma", None), "curses": ("_curses", "libncursesw.so.6"), "readline": ("readline", "libreadline.so.8"),
    "dbm": ("_dbm", "libdb-5.3.so"), "mmap": ("mmap", None), "resource": ("resource", None),
    "termios": ("termios", None), "tty": ("termios", None), "pty": ("termios", None),
    "contextvars": ("_contextvars", None), "asyncio": ("_contextvars", None), "cProfile": ("_lsprof", None),
    "crypt": ("_crypt", None), "xml": (None, "libexpat.so.1"), "plistlib": (None, "libexpat.so.1"),
}
# Linked only by stdlib modules hardly anyone imports (nis, dbm, curses.panel): breaking them rarely matters.
RARELY_USED = ("libnsl", "libtirpc", "libgssapi", "libk5crypto", "libkrb5", "libkeyutils", "libcom_err", "libpanel",
               "libdb-")
TLS_LIBRARIES = ("libssl.so", "libcrypto.so")  # the network-security family breaks these

LIBRARY_DAMAGE = {
    "delete": ("rm -f {path}", "deleted"),
    "truncate": ("truncate -s 0 {path}", "truncated to zero bytes"),
    "bad-header": ("printf 'XXXX' | dd of={path} bs=1 seek=0 conv=notrunc status=none", "overwrote the ELF header of"),
}
EXTENSION_DAMAGE = {"delete": LIBRARY_DAMAGE["delete"], "truncate": LIBRARY_DAMAGE["truncate"]}


def damage_library(probe: GoldProbe, path: str, mode: str) -> tuple[str, list[str], list[str]]:
    command, what = LIBRARY_DAMAGE[mode]
    owner = "*" + path.removeprefix("/usr")  # dpkg may have recorded it under /lib or /usr/lib (merged /usr)
    return (f"{what} {path}", [f"test -e {q(path)}", command.format(path=q(path))],
            [*reinstall_deb(probe, owner), "ldconfig"])


def _library_targets(probe: GoldProbe) -> list[Target]:
    """What the interpreter and extensions link to, favouring libraries behind a stdlib module the tests import."""
    libraries = {p: 0.2 if any(r in p for r in RARELY_USED) else 1.0 for p in probe.shared_libraries}
    for module, (_, soname) in STDLIB_EXTENSIONS.items():
        if soname:
            path = next((p for p in libraries if p.endswith(f"/{soname}")), f"{lib_dir(probe)}/{soname}")
            libraries[path] = max(libraries.get(path, 1.0), 3.0 if module in probe.test_imports else 1.0)
    usable = {p: w for p, w in libraries.items() if used_path(probe, p)
              and not any(e in PurePosixPath(p).name for e in (*ESSENTIAL_LIBRARIES, *TLS_LIBRARIES))}
    return [Target(f"{p}:{mode}", (p, mode), w) for p, w in sorted(usable.items()) for mode in LIBRARY_DAMAGE]


def _library(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    path, mode = target.data
    description, commands, repair = damage_library(probe, path, mode)
    runner = RUNNER_BROKEN if "libexpat" in path else {}  # the interpreter itself links libexpat
    return Draft(target.key, description, commands, repair,
                 f"Loading the system library {PurePosixPath(path).name} fails for the programs that need it.", runner)


def extension_targets(probe: GoldProbe, pairs: Iterable[tuple[str, str]]) -> list[Target]:
    """(extension stem, damage) targets for stdlib extensions, from (module the tests may import, its extension)."""
    weights: dict[str, float] = {}
    for module, stem in pairs:
        if not used_module(probe, stem):
            continue  # the gold run never loaded it
        weights[stem] = max(weights.get(stem, 1.0), 3.0 if module in probe.test_imports else 1.0)
    return [Target(f"{stem}:{mode}", (stem, mode), w) for stem, w in sorted(weights.items())
            for mode in EXTENSION_DAMAGE]


def damage_extension(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    stem, mode = target.data
    pattern = f"{probe.stdlib}/lib-dynload/{stem}.cpython-*.so"
    command, what = EXTENSION_DAMAGE[mode]
    return Draft(target.key, f"{what} the stdlib extension {pattern}",
                 [f"ls {pattern} >/dev/null", command.format(path=pattern)], reinstall_deb(probe, pattern),
                 f"Python's own compiled module {stem} cannot be loaded.")


SHEBANGS = {"missing-venv": "1s|.*|#!/opt/venv-old/bin/python|", "old-python": "1s|.*|#!/usr/bin/python3.8|",
            "crlf": "1s|$|\\r|"}


def _shebang_targets(probe: GoldProbe) -> list[Target]:
    return [Target(f"{path}:{kind}", (d, path, kind), w) for d, w in breakable(probe) for path in scripts(probe, d)
            for kind in SHEBANGS]


def _shebang(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, path, kind = target.data
    return Draft(target.key, f"rewrote the shebang of {path} ({kind})",
                 [f"head -n1 {q(path)} | grep -q '^#!.*python'", f"sed -i {q(SHEBANGS[kind])} {q(path)}"],
                 [reinstall_wheel(probe, dist)], f"The `{PurePosixPath(path).name}` command does not start.")


PRELOADS = ("/usr/local/lib/libfaketime.so.1", "{lib}/libjemalloc.so.2", "/opt/apm/agent/lib/libapm_preload.so")


def _preload_targets(probe: GoldProbe) -> list[Target]:
    if not used_event(probe, *PROCESS_EVENTS):
        return []  # the loader's complaint shows only on the stderr of programs the suite starts
    paths = [path.format(lib=lib_dir(probe)) for path in PRELOADS]
    return [Target(f"/etc/ld.so.preload:{path}", path) for path in paths]


def _preload(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """A preload left behind by an uninstalled tool: every dynamically linked program complains on stderr."""
    return Draft(target.key, f"listed the missing {target.data} in /etc/ld.so.preload",
                 ["test ! -e /etc/ld.so.preload", f"test ! -e {q(target.data)}",
                  f"echo {q(target.data)} > /etc/ld.so.preload"],
                 ["rm -f /etc/ld.so.preload"], "Every program prints an error from the dynamic loader before it runs.")


def _venv_targets(probe: GoldProbe) -> list[Target]:
    return [Target(f"{venv_root(probe)}:{kind}", kind) for kind in ("no-pyvenv-cfg", "dangling-python-link")]


def _venv(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    venv, link = venv_root(probe), f"{venv_root(probe)}/bin/python3"
    system_python3 = f"{PurePosixPath(interpreter(probe)).parent}/python3"
    if target.data == "no-pyvenv-cfg":
        return Draft(target.key, f"deleted {venv}/pyvenv.cfg", [f"rm {q(venv)}/pyvenv.cfg"],
                     [f"{interpreter(probe)} -m venv --upgrade --without-pip {q(venv)}"],
                     "The virtual environment's Python no longer sees the packages installed in it.", RUNNER_BROKEN)
    major, minor = xy(probe).split(".")
    stale = f"{PurePosixPath(system_python3).parent}/python{major}.{int(minor) - 2}"  # an interpreter since removed
    return Draft(target.key, f"pointed {link} at the missing {stale}",
                 [f"test \"$(readlink {q(link)})\" = {q(system_python3)}", f"ln -sfn {q(stale)} {q(link)}"],
                 [f"ln -sfn {q(system_python3)} {q(link)}"], "The virtual environment's python cannot be started.",
                 RUNNER_BROKEN)


OPERATORS = [
    Operator("damage-shared-library", CATEGORY, _library_targets, _library, APT),
    Operator("damage-stdlib-extension", CATEGORY,
             lambda p: extension_targets(p, [(m, s) for m, (s, _) in STDLIB_EXTENSIONS.items() if s]),
             damage_extension, APT),
    Operator("broken-shebang", CATEGORY, _shebang_targets, _shebang),
    Operator("broken-virtualenv", CATEGORY, _venv_targets, _venv, NO_ARCHIVES),
    Operator("stale-ld-preload", CATEGORY, _preload_targets, _preload, NO_ARCHIVES),
]
