"""File system: files deleted or truncated, package data damaged, execute bits lost, packages replaced by dangling
links.

The container runs as root with DAC_OVERRIDE, so read/write bits never bite: only execute bits and the
presence and shape of files do.
"""

from __future__ import annotations

import random
from pathlib import PurePosixPath

from cligym_env.generator.operators._base import (
    NO_ARCHIVES, RUNNER_BROKEN, Draft, Operator, Target, breakable, drop_bytecode, interpreter, q, reinstall_wheel,
    data_files, scripts, source_targets, used_path)
from cligym_env.generator.types import GoldProbe

CATEGORY = "file-system"


def _delete(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, path = target.data
    return Draft(path, f"deleted {path} (from {dist.name})",
                 [f"test -f {q(path)}", f"rm -f {q(path)}", drop_bytecode(path)],
                 [reinstall_wheel(probe, dist)], f"A file of the installed {dist.name} package seems to be missing.")


TRUNCATIONS = {
    "empty": ("truncate -s 0 {path}", "emptied"),
    "half": ("truncate -s $(( $(stat -c %s {path}) / 2 )) {path}", "cut in half"),
    "nul-bytes": ("head -c 64 /dev/zero | dd of={path} bs=1 seek=0 conv=notrunc status=none", "overwrote the start of"),
}


def _truncate_targets(probe: GoldProbe) -> list[Target]:
    return [Target(f"{t.key}:{mode}", (*t.data, mode), t.weight) for t in source_targets(probe) for mode in TRUNCATIONS]


def _truncate(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, path, mode = target.data
    command, what = TRUNCATIONS[mode]
    return Draft(target.key, f"{what} {path} (from {dist.name})",
                 [f"test -s {q(path)}", command.format(path=q(path)), drop_bytecode(path)],
                 [reinstall_wheel(probe, dist)], f"A module file of the installed {dist.name} package looks damaged.")


def _exec_targets(probe: GoldProbe) -> list[Target]:
    targets = [Target(path, (path, None), 0.5 + w) for d, w in breakable(probe) for path in scripts(probe, d)
               if used_path(probe, path)]
    return targets + [Target(interpreter(probe), (interpreter(probe), None), 0.2)]  # fails the whole suite


def _exec_bit(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    path, _ = target.data
    mode = rng.choice(["644", "600", "444", "664"])
    runner = RUNNER_BROKEN if path == interpreter(probe) else {}
    return Draft(path, f"chmod {mode} {path}", [f"test -x {q(path)}", f"chmod {mode} {q(path)}"],
                 [f"chmod 755 {q(path)}"],
                 f"Running `{PurePosixPath(path).name}` is refused by the system.", runner)


def _package_dirs(probe: GoldProbe) -> list[Target]:
    site = probe.site_packages.rstrip("/")
    return [Target(f"{site}/{top}", (d, f"{site}/{top}"), w) for d, w in breakable(probe) for top in d.top_level
            if any(f.startswith(f"{site}/{top}/") for f in d.files)]


def _dangling(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """Like a development checkout that was linked in place of the package and later deleted."""
    dist, path = target.data
    name = PurePosixPath(path).name
    where = rng.choice([f"/home/dev/src/{dist.name}/src/{name}", f"/srv/checkouts/{dist.name}/{name}",
                        f"/opt/src/{dist.name}-dev/{name}"])
    return Draft(path, f"replaced {path} by a symlink to the missing {where}",
                 [f"test -d {q(path)}", f"rm -rf {q(path)}", f"ln -s {q(where)} {q(path)}"],
                 [f"rm -f {q(path)}", reinstall_wheel(probe, dist)],
                 f"The installed {name} package does not point where it should.")


DATA_DAMAGE = {
    "delete": ("rm -f {path}", "deleted"),
    "empty": ("truncate -s 0 {path}", "emptied"),
    "garbled": ("head -c 48 /dev/urandom | dd of={path} bs=1 seek=0 conv=notrunc status=none", "garbled the start of"),
}


def _data_targets(probe: GoldProbe) -> list[Target]:
    """One package data file (a template, a table, a bundle) that the gold run really opened."""
    return [Target(f"{path}:{mode}", (dist, path, mode), w) for dist, w in breakable(probe)
            for path in data_files(probe, dist) for mode in DATA_DAMAGE]


def _data(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, path, mode = target.data
    command, what = DATA_DAMAGE[mode]
    return Draft(target.key, f"{what} the data file {path} (from {dist.name})",
                 [f"test -s {q(path)}", command.format(path=q(path))], [reinstall_wheel(probe, dist)],
                 f"A data file shipped with {dist.name} seems to be missing or damaged.")


OPERATORS = [
    Operator("delete-module-file", CATEGORY, source_targets, _delete),
    Operator("truncate-module-file", CATEGORY, _truncate_targets, _truncate),
    Operator("missing-execute-bit", CATEGORY, _exec_targets, _exec_bit, NO_ARCHIVES),
    Operator("dangling-package-link", CATEGORY, _package_dirs, _dangling),
    Operator("damage-package-data", CATEGORY, _data_targets, _data),
]
