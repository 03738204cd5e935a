"""Dependencies & runtime: packages missing, half-removed, with broken metadata, shadowed or installed elsewhere."""

from __future__ import annotations

import random
from pathlib import PurePosixPath

from cligym_env.generator.operators._base import (
    NO_ARCHIVES, Draft, Operator, Target, breakable, dist_info, q, reinstall_wheel, used_path, venv_root,
    write_lines)
from cligym_env.generator.types import GoldProbe

CATEGORY = "dependencies-runtime"


def _dists(probe: GoldProbe) -> list[Target]:
    return [Target(d.name, d, w) for d, w in breakable(probe)]


def _uninstall(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist = target.data
    return Draft(dist.name, f"pip-uninstalled {dist.name} {dist.version}",
                 [f"{probe.python} -m pip uninstall -y {q(dist.name)}"], [reinstall_wheel(probe, dist)],
                 f"Something needed at import time ({', '.join(dist.top_level) or dist.name}) seems to be gone.")


def _half_removed(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """The package's files are gone but its dist-info stays, so `pip install` says it is already satisfied."""
    dist = target.data
    site = PurePosixPath(probe.site_packages)
    sharing = [d for d in probe.distributions if d is not dist and set(d.top_level) & set(dist.top_level)]
    foreign = {str(p) for d in sharing for f in d.files for p in PurePosixPath(f).parents}  # namespace packages
    doomed = set()
    for path in dist.files:
        if path.startswith(f"{site}/") and ".dist-info/" not in path:
            parts = PurePosixPath(path).relative_to(site).parts
            doomed.add(next(str(site.joinpath(*parts[:n])) for n in range(1, len(parts) + 1)
                            if str(site.joinpath(*parts[:n])) not in foreign))
    return Draft(dist.name, f"deleted the files of {dist.name} but kept its dist-info",
                 [f"rm -rf {' '.join(q(p) for p in sorted(doomed))}"], [reinstall_wheel(probe, dist)],
                 f"pip believes {dist.name} is installed, but Python cannot use it.")


METADATA_DAMAGE = {
    "no-metadata": ("rm -f {info}/METADATA", "its METADATA file is missing"),
    "no-dist-info": ("rm -rf {info}", "its whole dist-info folder is missing"),
    "no-entry-points": ("rm -f {info}/entry_points.txt", "its entry_points.txt is missing"),
    "no-record": ("rm -f {info}/RECORD", "its RECORD is missing, so pip cannot manage it"),
}


def _metadata_targets(probe: GoldProbe) -> list[Target]:
    targets = []
    for dist, weight in breakable(probe):
        info = dist_info(probe, dist)
        for kind in METADATA_DAMAGE:
            read = {"no-metadata": f"{info}/METADATA", "no-entry-points": f"{info}/entry_points.txt",
                    "no-record": f"{info}/RECORD", "no-dist-info": info}[kind] if info else ""
            if info and (kind != "no-entry-points" or read in dist.files) and used_path(probe, read):
                targets.append(Target(f"{dist.name}:{kind}", (dist, info, kind), weight))
    return targets


def _metadata(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, info, kind = target.data
    command, what = METADATA_DAMAGE[kind]
    return Draft(target.key, f"{dist.name}: {what}", [f"test -d {q(info)}", command.format(info=q(info))],
                 [reinstall_wheel(probe, dist)],
                 f"The installed package metadata of {dist.name} looks inconsistent.")


def _shadow_targets(probe: GoldProbe) -> list[Target]:
    return [Target(f"{top}:{kind}", (top, kind), w) for d, w in breakable(probe) for top in d.top_level
            if top.isidentifier() for kind in ("module", "package")]


def _shadow(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """A stray module of the same name earlier on sys.path (the stdlib folder comes before site-packages)."""
    top, kind = target.data
    body = ['"""Helpers kept from an old deployment script."""', "", "def main():", "    return 0"]
    if kind == "module":
        path = f"{probe.stdlib}/{top}.py"
        commands, repair = [f"test ! -e {q(path)}", write_lines(path, body)], [f"rm -f {q(path)}"]
    else:
        path = f"{probe.stdlib}/{top}"
        commands = [f"test ! -e {q(path)}", f"mkdir {q(path)}", write_lines(f"{path}/__init__.py", body)]
        repair = [f"rm -rf {q(path)}"]
    return Draft(target.key, f"created {path}, which shadows the installed {top}", commands, repair,
                 f"`import {top}` does not load the module the tests expect.")


PIP_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/root/.config/pip/pip.conf", "/root/.pip/pip.conf",
               "{venv}/pip.conf")
PIP_MISROUTES = {"target": "target = /usr/local/lib/pip-target", "prefix": "prefix = /usr/local", "user": "user = true",
                 "root": "root = /srv/pip-root"}


def _misroute_targets(probe: GoldProbe) -> list[Target]:
    configs = [conf.format(venv=venv_root(probe)) for conf in PIP_CONFIGS]
    return [Target(f"{d.name}@{conf}:{key}", (d, conf, key), w)
            for d, w in breakable(probe) for conf in configs for key in PIP_MISROUTES]


def _misroute(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """A package is missing and a pip config file sends every install somewhere Python does not look."""
    dist, conf, key = target.data
    return Draft(target.key, f"uninstalled {dist.name} and wrote `{PIP_MISROUTES[key]}` into {conf}",
                 [f"{probe.python} -m pip uninstall -y {q(dist.name)}", f"test ! -e {q(conf)}",
                  f"mkdir -p {q(str(PurePosixPath(conf).parent))}",
                  write_lines(conf, ["[install]", PIP_MISROUTES[key]])],
                 [f"rm -f {q(conf)}", reinstall_wheel(probe, dist)],
                 f"{', '.join(dist.top_level) or dist.name} cannot be imported; reinstalling does not seem to help.")


OPERATORS = [
    Operator("uninstall-dependency", CATEGORY, _dists, _uninstall),
    Operator("half-removed-package", CATEGORY, _dists, _half_removed),
    Operator("corrupt-dist-metadata", CATEGORY, _metadata_targets, _metadata),
    Operator("shadowing-module", CATEGORY, _shadow_targets, _shadow, NO_ARCHIVES),
    Operator("pip-config-misroute", CATEGORY, _misroute_targets, _misroute),
]
