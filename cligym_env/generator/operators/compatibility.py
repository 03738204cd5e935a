"""Compatibility: code or binaries meant for another Python, metadata claiming another version, warnings
escalated to errors."""

from __future__ import annotations

import random
import re
from pathlib import PurePosixPath

from cligym_env.generator.operators._base import (
    NO_ARCHIVES, Draft, Operator, Target, breakable, dist_info, drop_bytecode, hook_draft, hook_targets, lib_dir, q,
    reinstall_wheel, source_targets, used_path, xy)
from cligym_env.generator.types import GoldProbe

CATEGORY = "compatibility"


def newer_syntax(probe: GoldProbe) -> dict[str, str]:
    """Statements that only a newer Python than the probe's can parse."""
    if tuple(map(int, xy(probe).split("."))) < (3, 12):
        return {"pep695-alias": "type _Compat = int | str | None",
                "pep695-generic": "def _identity[T](value: T) -> T: return value"}
    return {"pep750-template": '_TEMPLATE = t"{__name__}"'}


def _syntax_targets(probe: GoldProbe) -> list[Target]:
    return [Target(f"{t.key}:{name}", (*t.data, line), t.weight) for t in source_targets(probe)
            for name, line in newer_syntax(probe).items()]


def _syntax(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, path, line = target.data
    return Draft(target.key, f"appended `{line}` (newer Python syntax) to {path}",
                 [f"test -f {q(path)}", f"printf '\\n%s\\n' {q(line)} >> {q(path)}", drop_bytecode(path)],
                 [reinstall_wheel(probe, dist)],
                 f"Part of {dist.name} looks like it was written for a different Python version.")


ABI = re.compile(r"\.(cpython-\d+-[\w-]+|abi3)\.so$")


def _abi_targets(probe: GoldProbe) -> list[Target]:
    """Each compiled module renamed to the tag of a neighbouring Python version or of another architecture."""
    major, minor = map(int, xy(probe).split("."))
    owners = {f: (d, w) for d, w in breakable(probe) for f in d.files}
    targets = []
    for path in probe.extension_modules:
        found = ABI.search(path)
        if path not in owners or not found or not used_path(probe, path):
            continue
        platform = found.group(1).split("-", 2)[2] if found.group(1) != "abi3" else PurePosixPath(lib_dir(probe)).name
        other = platform.replace("x86_64", "aarch64") if "x86_64" in platform else "x86_64-linux-gnu"
        for tag in (f"cpython-{major}{minor - 1}-{platform}", f"cpython-{major}{minor + 1}-{platform}",
                    f"cpython-{major}{minor}-{other}"):
            targets.append(Target(f"{path}:{tag}", (*owners[path], path, tag), owners[path][1]))
    return targets


def _abi(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    dist, _, path, tag = target.data
    renamed = ABI.sub(f".{tag}.so", path)
    return Draft(target.key, f"renamed {path} to {PurePosixPath(renamed).name}",
                 [f"test -f {q(path)}", f"mv {q(path)} {q(renamed)}"],
                 [f"rm -f {q(renamed)}", reinstall_wheel(probe, dist)],
                 f"A compiled module of {dist.name} does not match this interpreter.")


def _skew_targets(probe: GoldProbe) -> list[Target]:
    return [Target(f"{d.name}:{kind}", (d, kind), w) for d, w in breakable(probe) if dist_info(probe, d)
            and used_path(probe, f"{dist_info(probe, d)}/METADATA")  # someone reads the version
            for kind in ("major-bump", "ancient")]


def _skew(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """The installed metadata claims another version than the code, as after a botched partial upgrade."""
    dist, kind = target.data
    major = dist.version.split(".")[0]
    fake = f"{int(major) + 1}.0.0" if kind == "major-bump" and major.isdigit() else "0.0.1"
    metadata = f"{dist_info(probe, dist)}/METADATA"
    return Draft(target.key, f"{dist.name}'s METADATA now says version {fake} (really {dist.version})",
                 [f"grep -q '^Version: ' {q(metadata)}",
                  f"sed -i {q(f's/^Version: .*/Version: {fake}/')} {q(metadata)}"],
                 [reinstall_wheel(probe, dist)],
                 f"The version reported for {dist.name} does not match what is installed.")


WARNINGS = ("Warning", "DeprecationWarning", "FutureWarning", "UserWarning", "RuntimeWarning", "ResourceWarning")


def _warning_targets(probe: GoldProbe) -> list[Target]:
    return hook_targets(probe, WARNINGS)


def _warnings(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    category = target.data[0]
    code = f"import warnings; warnings.filterwarnings(\"error\", category={category})"
    return hook_draft(probe, rng, target, code,
                      f"turns every {category} into an error",
                      "Code that used to only warn now fails outright.")


OPERATORS = [
    Operator("newer-python-syntax", CATEGORY, _syntax_targets, _syntax),
    Operator("abi-tag-mismatch", CATEGORY, _abi_targets, _abi),
    Operator("metadata-version-skew", CATEGORY, _skew_targets, _skew),
    Operator("warnings-as-errors", CATEGORY, _warning_targets, _warnings, NO_ARCHIVES),
]
