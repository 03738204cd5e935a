"""Other: imports blocked in sys.modules by a start-up hook, and system data Python relies on (time zones, text
codecs) removed."""

from __future__ import annotations

import random

from cligym_env.generator.operators._base import (
    APT, NO_ARCHIVES, Draft, Operator, Target, breakable, drop_bytecode, hook_draft, hook_targets, q,
    reinstall_deb, used_module)
from cligym_env.generator.types import GoldProbe

CATEGORY = "other"


def _blocked_targets(probe: GoldProbe) -> list[Target]:
    return [target for dist, weight in breakable(probe)
            for target in hook_targets(probe, [n for n in dist.top_level if n.isidentifier()], weight)]


def _blocked(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    """`sys.modules[name] = None` makes every import of the name fail although the package is intact."""
    module = target.data[0]
    return hook_draft(probe, rng, target, f"import sys; sys.modules[\"{module}\"] = None",
                      f"blocks `import {module}` via sys.modules",
                      f"`import {module}` fails although the package is installed and intact.")


ZONEINFO = "/usr/share/zoneinfo"
ZONES = ("", "Europe", "America", "Asia", "Etc", "UTC", "US", "Australia")


def _zone_targets(probe: GoldProbe) -> list[Target]:
    if probe.usage_known and not any(used_module(probe, m) for m in ("zoneinfo", "dateutil.tz", "pytz", "tzlocal")):
        return []  # nothing in the gold run reads the time zone database
    weight = 2.0 if {"zoneinfo", "datetime", "time", "dateutil", "pytz"} & set(probe.test_imports) else 1.0
    return [Target(f"{ZONEINFO}/{zone}".rstrip("/"), zone, weight) for zone in ZONES]


def _zones(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    return Draft(target.key, f"deleted {target.key}", [f"test -e {q(target.key)}", f"rm -rf {q(target.key)}"],
                 reinstall_deb(probe, f"{ZONEINFO}/Etc/UTC"), "Time zone lookups fail.")


CODECS = ("idna", "punycode", "cp1252", "cp437", "unicode_escape", "raw_unicode_escape", "utf_8_sig", "base64_codec",
          "hex_codec", "iso8859_15", "mac_roman", "quopri_codec", "charmap", "shift_jis", "euc_kr")


def _codec_targets(probe: GoldProbe) -> list[Target]:
    return [Target(f"{probe.stdlib}/encodings/{codec}.py", codec, 2.0 if codec in ("idna", "utf_8_sig") else 1.0)
            for codec in CODECS if used_module(probe, f"encodings.{codec}")]


def _codec(probe: GoldProbe, target: Target, rng: random.Random) -> Draft:
    path = target.key
    return Draft(path, f"deleted the {target.data} codec ({path})",
                 [f"test -f {q(path)}", f"rm -f {q(path)}", drop_bytecode(path)], reinstall_deb(probe, path),
                 f"Encoding or decoding text with the {target.data.replace('_', '-')} codec fails.")


OPERATORS = [
    Operator("blocked-import-hook", CATEGORY, _blocked_targets, _blocked, NO_ARCHIVES),
    Operator("missing-timezone-data", CATEGORY, _zone_targets, _zones, APT),
    Operator("missing-codec", CATEGORY, _codec_targets, _codec, APT),
]
