"""The package's one way to publish files and folders atomically, to keep an append-only JSONL log, and to read
a folder's files.

Publishing: build under a hidden name beside the destination, then `os.rename` it into place, so a reader sees
the old version or the new one, never half of either (rename within one folder is atomic on POSIX). JSONL: one
record per line, flushed and fsynced, so a crash loses at most the line being written, which readers skip.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


def hidden_sibling(final: Path, kind: str) -> Path:
    """A unique hidden name beside `final` (`.name.kind-xxxx`), skipped by readers of the folder."""
    return final.with_name(f".{final.name}.{kind}-{secrets.token_hex(6)}")


def publish(staging: Path, final: Path, *, overwrite: bool = False,
            exists: Callable[[Path], Exception] = FileExistsError) -> None:
    """Rename `staging` (a file or folder) to `final`; with `overwrite` an old one is moved aside and deleted only
    once the new one is in. Without it an existing `final` raises `exists(final)`."""
    aside: list[Path] = []
    try:
        while True:
            try:
                if not overwrite and final.is_file():
                    raise exists(final)
                os.rename(staging, final)
                break
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                    raise
                if not overwrite:
                    raise exists(final) from None
            old = hidden_sibling(final, "old")
            with contextlib.suppress(FileNotFoundError):  # another writer moved it first: just retry
                os.rename(final, old)
                aside.append(old)
    except BaseException:
        if aside and not final.exists():
            os.rename(aside.pop(), final)
        raise
    for old in aside:
        _remove(old)


@contextlib.contextmanager
def staged_folder(final: Path, *, overwrite: bool = False,
                  exists: Callable[[Path], Exception] = FileExistsError) -> Iterator[Path]:
    """Yield an empty hidden folder beside `final`; when the block ends without error it is published as `final`,
    else removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = hidden_sibling(final, "tmp")
    staging.mkdir()
    try:
        yield staging
        publish(staging, final, overwrite=overwrite, exists=exists)
    except BaseException:
        _remove(staging)
        raise


def append_jsonl(path: Path, records: Iterable[Any], *, encode: Callable[[Any], str] = json.dumps) -> None:
    """Append one line per record, flushed to disk; a torn last line left by a crash is cut off first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as sink:
        if sink.tell():
            with path.open("rb") as source:
                source.seek(-1, os.SEEK_END)
                if source.read(1) != b"\n":
                    sink.truncate(path.read_bytes().rfind(b"\n") + 1)
        for record in records:
            sink.write(encode(record).encode("utf-8") + b"\n")
        sink.flush()
        os.fsync(sink.fileno())


def read_jsonl(path: Path, *, decode: Callable[[str], Any] = json.loads) -> list[Any]:
    """Every record in `path` (none if it does not exist); text after the last newline is a torn write, skipped."""
    if not Path(path).exists():
        return []
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    return [decode(line) for line in lines[:-1] if line.strip()]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative POSIX path -> bytes; none if it is missing), less the bytecode that running
    the tests locally leaves behind, which is never part of a task or of a project's source."""
    files: dict[str, bytes] = {}
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
        for name in sorted(names):
            path = Path(directory, name)
            if not name.endswith(".pyc") and path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files
