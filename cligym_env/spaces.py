"""The text spaces of `CLIGym-v0` and the sanitizer that keeps every observation inside them.

Gymnasium's `Text` space defaults to alphanumerics; shell commands and terminal output need printable
ASCII, newlines, tabs and the common non-ASCII a terminal shows (Latin-1, punctuation, arrows, box
drawing). Anything else becomes U+FFFD, the character undecodable bytes already decode to.
"""

from __future__ import annotations

import re

from gymnasium import spaces

_RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x2010, 0x2027), (0x2030, 0x205E), (0x2190, 0x21FF),
           (0x2500, 0x25FF), (0x2713, 0x2718), (0xFFFD, 0xFFFD)]
CHARSET = "\n\t" + "".join(chr(code) for low, high in _RANGES for code in range(low, high + 1))
SUBMIT = "submit"  # the action that ends an episode
REPLACEMENT = "\ufffd"
ACTION_MAX_LENGTH = 8_192
OBSERVATION_MAX_LENGTH = 65_536

_OUTSIDE = re.compile("[^" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in _RANGES) + "\n\t]")


def action_space() -> spaces.Text:
    return spaces.Text(max_length=ACTION_MAX_LENGTH, min_length=0, charset=CHARSET)


def observation_space() -> spaces.Text:
    return spaces.Text(max_length=OBSERVATION_MAX_LENGTH, min_length=0, charset=CHARSET)


def trim(text: str, limit: int, *, within: bool = False) -> str:
    """`text` cut to about `limit` characters, keeping its head and tail (errors usually sit at the end).

    The one head-and-tail trim of the package; `within=True` counts the marker inside `limit` (a hard cap)."""
    if len(text) <= limit:
        return text
    def marker(omitted: int) -> str:
        return f"\n[... {omitted} characters omitted ...]\n"

    keep = max(0, limit - len(marker(len(text)))) if within else limit
    cut = marker(len(text) - keep)[:limit] if within else marker(len(text) - keep)
    head, tail = keep // 2, keep - keep // 2
    return f"{text[:head]}{cut}{text[len(text) - tail:] if tail else ''}"


def sanitize(text: str, max_length: int = OBSERVATION_MAX_LENGTH) -> str:
    """Map `text` into the observation space: foreign characters replaced, length capped (head and tail kept)."""
    return trim(_OUTSIDE.sub(REPLACEMENT, text.replace("\r\n", "\n")), max_length, within=True)
