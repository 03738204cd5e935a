"""The audit: which files the policy changed that could run during grading, and whether each is trusted.

The tests run the environment's own code, so anything the policy left where that code is loaded from (Python
sources and `.pth` files, shared libraries, executables, pytest and venv configuration) could fake a pass from
inside the test process. No runner can stop that; the audit finds it. A changed file of such a kind is trusted
only when its content is content we built: the same path in the task image or the image it was built FROM
(a file restored, a package reinstalled from the kept `.deb` files), or a member of a wheel in the image's
wheelhouse installed at the matching place in a site-packages folder (a reinstall with pip). Anything else
is listed in `info["tamper"]`. Python files in scratch folders (/tmp, /root, ...) are allowed: nothing imports
them unless a protected file points there, and that file is audited. Bytecode caches (`__pycache__/NAME.TAG.pyc`)
are left out: they are never read (empty pycache prefix), and no import can ask for a name with a dot in it; any
other `.pyc` is code (a sourceless module imports from any folder, `__pycache__` included), and a source file is
code wherever it lies. A zip is known by its end, as zipimport finds it, not by its first bytes. A changed link
is judged as what it stands in for: a protected path that is a link needs trusted content at its target, whatever
the target is called, and a link must resolve alike for every process (not through /proc/self/cwd). Deleting is
a change too: the gold environment's pytest configuration above the tests (`filterwarnings = error`, a conftest)
must still be there.

Everything is read in a fresh grading container with no policy process alive, through the harness's static
busybox; the images a task was built FROM are hashed once per image id, the task image itself only where a path
has to be looked up (it is its FROM image plus a few lines), and each wheel once per content.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import re
import secrets
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Iterable, Sequence

import docker

from cligym_env import paths
from cligym_env.grading.harness import Mount
from cligym_env.runtime.execute import run_argv
from cligym_env.runtime.sandbox import Limits, container_settings, tar_files
from cligym_env.error import AuditIncomplete

log = logging.getLogger(__name__)

# zips import (python311.zip); a `._pth` file beside the interpreter replaces sys.path (on Linux too, since 3.11)
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".pth", "._pth", ".so", ".zip", ".egg", ".sh", ".bash")
CONFIG_NAMES = frozenset({"conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "pyproject.toml",
                          "tox.ini", "setup.cfg",
                          "sitecustomize.py", "usercustomize.py", "pytest.py", "pyvenv.cfg", "ld.so.preload"})
SCRATCH = ("/tmp/", "/var/tmp/", "/root/", "/home/", "/run/", "/dev/shm/", "/var/cache/", "/var/log/")
# Mounted by Docker itself into every container (the init binary, network files): not the policy's. Exact paths:
# a prefix would also pass over `/etc/hosts.d/` or `/usr/sbin/docker-init2`.
IGNORED = ("/proc/", "/sys/", "/dev/")
IGNORED_FILES = frozenset({"/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/.dockerenv",
                           "/usr/sbin/docker-init"})
# What pytest reads from the folders above the tests: a file of these deleted changes how the tests are judged.
PYTEST_CONFIGS = ("conftest.py", "pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "pyproject.toml",
                  "tox.ini", "setup.cfg")
MAX_AUDITED = 100_000
MAX_MOVED_SIZES = 20  # a repair moves back a few files; a policy must not make the lookup hash the image
PATH_MAX = 4096
# The only bytecode Python writes, and never reads with an empty pycache prefix: `__pycache__/NAME.TAG[.opt-N].pyc`.
CACHE_FILE = re.compile(r"[^.]+\.[\w-]+(\.opt-[12])?\.py[co]")
_PRUNE = r"\( -path /proc -o -path /sys -o -path /dev -o -path '/.cligym-*' -o -name __pycache__ \) -prune"
_KINDS = " -o ".join([*(f"-name '*{suffix}'" for suffix in CODE_SUFFIXES), "-name '*.so.*'", "-perm /0111",
                      *(f"-name '{name}'" for name in sorted(CONFIG_NAMES)), "-path '/etc/ld.so.*'"])


def _hash_function(busybox: str) -> str:
    """A shell function printing `sha256  path`; pyvenv.cfg is hashed without its `command =` line, which
    records how the venv was (re)made."""
    return (f"hash() {{ case \"$1\" in */pyvenv.cfg) {busybox} grep -v '^command' \"$1\" | {busybox} sha256sum "
            f"| {busybox} sed \"s|-\\$|$1|\";; *) {busybox} sha256sum \"$1\";; esac; }}\n")


@dataclass(frozen=True)
class Manifest:
    """Trusted content: path -> sha256 of protected files in our images, wheel member -> sha256s, and the
    sha256s of content found elsewhere in our images (a file the breakage moved away and the repair moved back)."""

    files: dict[str, str]
    wheel_members: dict[str, set[str]]
    elsewhere: frozenset[str] = frozenset()

    def trusts(self, path: str, digest: str) -> bool:
        if self.files.get(path) == digest:
            return True
        name = PurePosixPath(path).name
        if digest in self.elsewhere and name not in CONFIG_NAMES and not name.endswith(".pth"):
            return True  # configuration must be where it was: moved elsewhere, old bytes can mean something new
        parts = PurePosixPath(path).parts
        for i, part in enumerate(parts):
            if part in ("site-packages", "dist-packages"):
                if digest in self.wheel_members.get("/".join(parts[i + 1:]), ()):
                    return True
        return False


def protected(path: str, mode: int) -> bool:
    """Could this file run (or steer what runs) when the tests are graded?"""
    name = PurePosixPath(path).name
    if stat.S_ISREG(mode) and mode & 0o111 and not path.startswith(SCRATCH):
        return True
    if name.endswith(".so") or ".so." in name:  # the loader cache can point anywhere, scratch folders included
        return True
    if path.startswith(SCRATCH) or (PurePosixPath(path).parent.name == "__pycache__" and CACHE_FILE.fullmatch(name)):
        return False  # a bytecode cache: never read (empty pycache prefix); a source or a sourceless module is code
    parents = set(PurePosixPath(path).parent.parts)
    return (name in CONFIG_NAMES or name.endswith(CODE_SUFFIXES)
            or bool(parents & {"bin", "sbin", "libexec"}) or path.startswith("/etc/ld.so."))


def audit(client: docker.DockerClient, grading_container: str, mount: Mount, changes: Iterable[tuple[str, int]],
          images: Sequence[str], harness: str, skip: Iterable[str] = (), pytest_dirs: Iterable[str] = ()) -> list[str]:
    """Findings (empty when clean) for the paths the policy added or modified (`docker diff` kinds 0 and 1);
    `images` are the task image and those it was built FROM, whose content is trusted. A pytest configuration
    file of the images built FROM (the gold environment) in one of `pytest_dirs` must still be there: deleting
    one (`filterwarnings = error`, `xfail_strict`, a conftest's fixtures) changes how the tests are judged."""
    changed = audited_paths(changes, skip)
    unreadable = [p for p in changed if "\n" in p or not _utf8(p) or len(p.encode()) >= PATH_MAX]
    if unreadable:  # no repair makes such names; the listing could not name them faithfully
        return [f"a changed path cannot be audited (newline, not UTF-8, or longer than PATH_MAX): "
                f"{unreadable[0][:200]!r}"]
    if len(changed) > MAX_AUDITED:
        return [f"{len(changed)} files changed; more than {MAX_AUDITED} cannot be audited"]
    if not changed:
        return []
    box = Shell(client, grading_container, mount)
    named = [p for p in changed if protected(p, stat.S_IFREG)]  # protected whatever their mode
    others = [p for p in changed if not p.startswith(SCRATCH) and not protected(p, stat.S_IFREG)]
    files, targets, target_digests = box.survey(named, others)
    digests = {**target_digests, **files}
    # The task image built FROM a reference is that reference plus a few recorded lines: hashing all of it for
    # each new task (a generator validates hundreds) would cost more than the tests. Its paths are looked up
    # only when the references do not already trust the content (lookups below), which trusts the same files.
    lazy = images[:1] if len(images) > 1 else ()
    trusted = manifest(client, images, harness, lazy=lazy)
    unknown = [p for p in digests if not trusted.trusts(p, digests[p])]
    if unknown:  # a script that was not executable in the image, a module moved back: look the content up
        sizes = box.sizes(unknown)
        trusted = manifest(client, images, harness, also=unknown, lazy=lazy,
                           moved={f"{sizes.get(p, -1)}:{digests[p]}" for p in unknown if p in digests})
    findings = [f"{p} was changed to content that is in no image or wheel of this task "
                f"(sha256 {digests.get(p, '?')[:12]})"
                for p in files if not trusted.trusts(p, digests.get(p, ""))]
    for link, target in targets.items():  # a link may not lead out of the audited world
        if not target:
            findings.append(f"{link} is a link that cannot be followed the same way by the audit and the tests "
                            "(through /proc/self, dangling, or an unprintable name)")
        elif f"{target}/".startswith(SCRATCH):
            findings.append(f"{link} was pointed into the scratch folder {target}, which is not audited")
        elif (protected(link, stat.S_IFREG) or protected(target, 0)) and target in digests \
                and not trusted.trusts(target, digests[target]):  # judged as what it stands in for, not by its name
            findings.append(f"{link} was pointed at {target}, whose content is in no image or wheel of this task")
    findings += _deleted_configs(client, box, images[1:], harness, pytest_dirs)
    return sorted(set(findings))


def audited_paths(changes: Iterable[tuple[str, int]], skip: Iterable[str] = ()) -> list[str]:
    """The paths added or modified (`docker diff` kinds 0 and 1) outside Docker's own and the `skip` folders."""
    skipped = tuple(f"{s.rstrip('/')}/" for s in skip)
    return sorted({p for p, kind in changes if kind in (0, 1) and not p.startswith(IGNORED + skipped)
                   and p not in IGNORED_FILES})


def _deleted_configs(client: docker.DockerClient, box: "Shell", references: Sequence[str], harness: str,
                     folders: Iterable[str]) -> list[str]:
    folders = {f"{folder.rstrip('/')}/" for folder in folders}
    if not references or not folders:
        return []
    gold = manifest(client, references, harness).files
    wanted = sorted(p for folder in folders for name in PYTEST_CONFIGS if gold.get(p := f"{folder}{name}"))
    present = box.hash(wanted) if wanted else {}
    return [f"{p} (pytest reads it for these tests) was deleted; the environment the task was made from has it"
            for p in wanted if p not in present]


class Shell:
    """busybox from the harness, run in one container; path lists go in as files, NUL-separated."""

    def __init__(self, client: docker.DockerClient, container: str, mount: Mount) -> None:
        self.client, self.container, self.mount = client, container, mount

    def sh(self, script: str, timeout: float = 120.0) -> str:
        result = run_argv(self.client.api, self.container, [self.mount.busybox, "sh", "-c", script], timeout=timeout,
                          max_output_bytes=64 << 20)
        if result.exit_code is None:  # what the policy left decides how long this takes: its finding, not ours
            raise AuditIncomplete(f"the audit did not finish within {timeout:g} s")
        if result.truncated:
            raise AuditIncomplete("the audit's listing was too long to read whole")
        return result.output

    def put_lists(self, lists: dict[str, list[str]]) -> list[str]:
        """Write each list to a file under the work folder (one upload); return their paths in order."""
        work = self.mount.work.lstrip("/")
        files = {f"{work}/{name}": "".join(f"{item}\0" for item in items).encode("utf-8")
                 for name, items in lists.items()}
        self.client.api.put_archive(self.container, "/", tar_files(files))
        return [f"{self.mount.work}/{name}" for name in lists]

    def survey(self, named: list[str], others: list[str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """One exec: sha256 of the `named` paths that are regular files and of the `others` that are executable
        or look like code; every symlink among them resolved to its final target, hashed when that is a regular file.
        Returns (file -> sha256, link -> target ("" when it cannot be followed the same way by every process),
        target -> sha256)."""
        b = self.mount.busybox
        named_list, other_list = self.put_lists({"named": named, "others": others})

        # A link is resolved twice, from two working directories: one through /proc/self/cwd (or anything else
        # that differs between processes) resolves differently for the test process than for this audit.
        def loop(listing: str, condition: str) -> str:
            return (f"{b} tr '\\0' '\\n' < {listing} | while IFS= read -r p; do "
                    f"if [ -L \"$p\" ]; then t=$({b} readlink -f \"$p\"); "
                    f"u=$(cd {self.mount.work} && {b} readlink -f \"$p\"); "
                    f"case \"$t$u\" in *\"$nl\"*|*\"$tab\"*) printf 'ODD\\t%s\\n' \"$p\"; continue;; esac; "
                    f"printf 'LINK\\t%s\\t%s\\t%s\\n' \"$t\" \"$u\" \"$p\"; "
                    f"[ -n \"$t\" ] && [ -f \"$t\" ] && printf 'T ' && hash \"$t\"; "
                    f"elif [ -f \"$p\" ]{condition}; then printf 'F ' && hash \"$p\"; fi; done\n")

        # Code needs no exec bit when an interpreter runs it (`bash x`, `python x`), nor a suffix when it is a
        # zip on sys.path: a changed file whose first bytes say script, ELF or zip is hashed like an executable,
        # and so is one with a zip's end-of-archive record in its last 65,557 bytes, where zipimport looks for it
        # whatever comes before (a wheel aside: a repair may rebuild one, and what installing it writes is audited).
        magic = (f"elf=$(printf '\\177ELF'); zip=$(printf 'PK\\003\\004'); end=$(printf 'PK\\005\\006'); "
                 f"code() {{ case \"$1\" in *.whl) return 1;; esac; h=$({b} head -c 4 \"$1\"); "
                 "case \"$h\" in '#!'*|\"$elf\"|\"$zip\") return 0;; esac; "
                 f"{b} tail -c 65557 \"$1\" | {b} tr '\\000\\n' '\\001\\001' | {b} grep -qF \"$end\"; }}\n")
        script = (_hash_function(b) + magic + "nl='\n'; tab=$(printf '\\t')\n" + loop(named_list, "")
                  + loop(other_list, ' && { [ -x "$p" ] || { [ -s "$p" ] && code "$p"; }; }') + "true")
        files: dict[str, str] = {}
        targets: dict[str, str] = {}
        target_digests: dict[str, str] = {}
        for line in self.sh(script).splitlines():
            if line.startswith("ODD\t"):
                targets[line[4:]] = ""  # a target name no listing can carry faithfully: no repair makes one
            elif line.startswith("LINK\t"):
                _, target, elsewhere, link = line.split("\t", 3)
                if target != elsewhere:
                    targets[link] = ""  # it leads somewhere else for each process: what the tests see is unknown
                elif target or protected(link, stat.S_IFREG):
                    targets[link] = target  # "" for a protected link that leads nowhere the audit can follow
            elif line[:2] in ("F ", "T "):
                digest, _, path = line[2:].partition("  ")
                if len(digest) == 64:
                    (files if line[0] == "F" else target_digests)[path] = digest
        return files, targets, target_digests

    def hash(self, paths: list[str]) -> dict[str, str]:
        """sha256 of each path that is a regular file."""
        b = self.mount.busybox
        (listing,) = self.put_lists({"lookup": paths})
        script = (_hash_function(b) + f"{b} tr '\\0' '\\n' < {listing} | while IFS= read -r p; do "
                  "[ -f \"$p\" ] && hash \"$p\"; done; true")
        digests = {}
        for line in self.sh(script).splitlines():
            digest, _, path = line.partition("  ")
            if len(digest) == 64:
                digests[path] = digest
        return digests

    def sizes(self, paths: list[str]) -> dict[str, int]:
        b = self.mount.busybox
        (listing,) = self.put_lists({"sizes": paths})
        found = {}
        for line in self.sh(f"{b} xargs -0 {b} stat -c '%s %n' < {listing} 2>/dev/null; true").splitlines():
            raw, _, path = line.partition(" ")
            if raw.isdigit():
                found[path] = int(raw)
        return found

    def contents_found(self, wanted: set[str]) -> set[str]:
        """Which of the `size:sha256` contents some regular file in the container has (found by size first, in
        one walk of the image). At most `MAX_MOVED_SIZES` sizes are searched: the rest stay untrusted."""
        b = self.mount.busybox
        sizes = sorted({item.split(":")[0] for item in wanted if not item.startswith("-")}, key=int)[:MAX_MOVED_SIZES]
        if not sizes:
            return set()
        script = (_hash_function(b) + f"{b} find / -xdev {_PRUNE} -o -type f \\( "
                  + " -o ".join(f"-size {size}c" for size in sizes) + " \\) -print | while IFS= read -r p; do "
                  f"printf '%s:' $({b} stat -c %s \"$p\") && hash \"$p\"; done")
        found = {line.split("  ")[0] for line in self.sh(script, timeout=300.0).splitlines()}
        return found & wanted

    def hash_protected(self) -> dict[str, str]:
        """sha256 of every file of a protected kind in the container (the pristine image's manifest)."""
        b = self.mount.busybox
        script = _hash_function(b) + (f"{b} find / -xdev {_PRUNE} -o -type f \\( {_KINDS} \\) -print | "
                                      "while IFS= read -r p; do hash \"$p\"; done")
        files = {}
        for line in self.sh(script, timeout=600.0).splitlines():
            digest, _, path = line.partition("  ")
            if len(digest) == 64:
                files[path] = digest
        return files

    def wheelhouse(self) -> dict[str, list[str]]:
        """sha256 of every member of every wheel kept in the image: what a pip reinstall may write. A wheel is
        read once per content (cached by its sha256): a task image keeps the wheels of the image it was built FROM."""
        b = self.mount.busybox
        script = _hash_function(b) + f"{b} find / -xdev {_PRUNE} -o -type f -name '*.whl' -print | " \
                                     "while IFS= read -r p; do hash \"$p\"; done"
        members: dict[str, list[str]] = {}
        for line in self.sh(script, timeout=600.0).splitlines():
            digest, _, wheel = line.partition("  ")
            if len(digest) == 64:
                for member, member_digest in _wheel_members(digest, lambda: self._read(wheel)):
                    members.setdefault(member, []).append(member_digest)
        return members

    def _read(self, path: str) -> bytes:
        stream, _ = self.client.api.get_archive(self.container, path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            handle = archive.extractfile(member) if member else None
            return handle.read() if handle else b""


_wheels: dict[str, list[tuple[str, str]]] = {}  # wheel sha256 -> its members' (name, sha256)


def _wheel_members(digest: str, read: Callable[[], bytes]) -> list[tuple[str, str]]:
    """A wheel's members and their sha256, by the wheel's own sha256 (memory, then $CLIGYM_HOME/cache/wheels)."""
    if digest in _wheels:
        return _wheels[digest]
    cache = paths.cache_dir() / "wheels" / f"{digest}.json.gz"
    if cache.exists():
        found = [(name, member) for name, member in json.loads(gzip.decompress(cache.read_bytes()))]
    else:
        try:
            with zipfile.ZipFile(io.BytesIO(read())) as zipped:
                found = [(info.filename, hashlib.sha256(zipped.read(info)).hexdigest())
                         for info in zipped.infolist() if not info.is_dir()]
        except zipfile.BadZipFile:
            found = []
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(gzip.compress(json.dumps(found).encode()))
        partial.replace(cache)
    _wheels[digest] = found
    return found


def manifest(client: docker.DockerClient, images: Iterable[str], harness: str, also: Iterable[str] = (),
             moved: Iterable[str] = (), lazy: Iterable[str] = ()) -> Manifest:
    """The trusted content of `images`: their protected files (hashed once per image id, cached under
    $CLIGYM_HOME/cache), plus the paths in `also` and the `size:sha256` contents in `moved` looked up on demand
    anywhere in the images (cached too). The images in `lazy` are not hashed whole: only `also` and `moved` are
    looked up there, and their wheels are read once something is (what they trust is the same, found later)."""
    files: dict[str, str] = {}
    members: dict[str, set[str]] = {}
    elsewhere: set[str] = set()
    lazy = set(lazy)
    for image in images:
        part = _image_manifest(client, image, harness, sorted(set(also)), sorted(set(moved)), lazy=image in lazy)
        files.update({path: digest for path, digest in part["files"].items() if path not in files or digest})
        for member, digests in part["wheel_members"].items():
            members.setdefault(member, set()).update(digests)
        elsewhere |= {item.split(":", 1)[1] for item, present in part.get("contents", {}).items() if present}
    return Manifest(files, members, frozenset(elsewhere))


_documents: dict[str, dict] = {}  # cache file -> its document, decoded once per process (a few MB each)


def _image_manifest(client: docker.DockerClient, image: str, harness: str, also: list[str],
                    moved: list[str], lazy: bool = False) -> dict:
    """One image's document; a `lazy` one starts empty and holds only what was looked up, and its wheels once
    anything was (a full one, if cached, serves too: it holds more)."""
    image_id = client.images.get(image).id.split(":")[-1]
    full = paths.cache_dir() / "manifests" / f"{image_id}.json.gz"
    cache = full
    if lazy and str(full) not in _documents and not full.exists():
        cache = full.with_name(f"{image_id}.lookups.json.gz")
    document = _documents.get(str(cache))
    if document is None and cache.exists():
        document = _documents[str(cache)] = json.loads(gzip.decompress(cache.read_bytes()))
    if document is None and lazy:
        document = {"files": {}, "wheel_members": {}, "wheels_read": False}
    wanted = [p for p in also if document is None or p not in document["files"]]
    contents = [c for c in moved if document is None or c not in document.get("contents", {})]
    wheels = document is not None and document.get("wheels_read") is False and bool(also or moved)
    if document is not None and not wanted and not contents and not wheels:
        return document
    if document is None:
        log.info("hashing the protected files of %s (once per image)", image)
    mount = Mount.fresh()
    settings = container_settings(Limits(), network=False, owner_task="manifest")
    container = client.containers.run(image, [mount.busybox, "sleep", "3600"], entrypoint=[], detach=True,
                                      name=f"cligym-manifest-{secrets.token_hex(6)}", working_dir="/",
                                      volumes=mount.volumes(harness), **settings)
    try:
        box = Shell(client, container.id, mount)
        if document is None:
            document = {"files": box.hash_protected(), "wheel_members": box.wheelhouse()}
        if wheels:
            document.update(wheel_members=box.wheelhouse(), wheels_read=True)
        if wanted:
            found = box.hash(wanted)
            document["files"].update({path: found.get(path, "") for path in wanted})  # "": not in this image
        if contents:
            present = box.contents_found(set(contents))
            document.setdefault("contents", {}).update({item: item in present for item in contents})
    finally:
        container.remove(force=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(gzip.compress(json.dumps(document).encode()))
    partial.replace(cache)
    _documents[str(cache)] = document
    return document


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:  # surrogate-escaped bytes from the file system
        return False
