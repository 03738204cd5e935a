"""A sandbox: one labelled, resource-limited container of a task image, with its persistent shell.

Containers carry `cligym.*` labels and the owning process, so `cleanup()` can find any left by a crashed
run; every sandbox this process opens is also closed at interpreter exit.
"""

from __future__ import annotations

import atexit
import io
import os
import secrets
import socket
import stat
import tarfile
import time
import weakref
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Mapping

import docker
import requests
from docker.errors import APIError, NotFound

from cligym_env.error import ChangesUnlistable
from cligym_env.runtime.docker_client import connect
from cligym_env.runtime.shell import CommandResult, PersistentShell, ShellError

LABEL = "cligym.managed"
SNAPSHOT_LABEL = "cligym.snapshot"  # images committed from a policy's container for grading
_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETFCAP", "NET_BIND_SERVICE"]
_open_sandboxes: "weakref.WeakSet[Sandbox]" = weakref.WeakSet()


@dataclass(frozen=True)
class Limits:
    """Per-container limits. `disk` caps the writable layer: the storage driver here has no quota, so the
    sandbox measures it (at most once a second, and before grading) and the episode ends when it is exceeded."""

    memory: str = "2g"
    pids: int = 1024
    cpus: float = 1.0
    max_output_bytes: int = 32_768
    disk: str = "2g"

    @property
    def disk_bytes(self) -> int:
        return parse_size(self.disk)


def parse_size(text: str) -> int:
    """'2g', '300m', '512k' or a plain number of bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    value = str(text).strip().lower().removesuffix("b")
    try:
        return int(float(value[:-1]) * units[value[-1]]) if value and value[-1] in units else int(value)
    except ValueError:
        raise ValueError(f"size {text!r} is not understood; write e.g. '2g', '300m' or a number of bytes") from None


def container_settings(limits: Limits, *, network: bool, owner_task: str) -> dict:
    """docker-py `containers.run` keywords shared by policy and grading containers: labels, limits, capabilities."""
    return dict(
        labels={LABEL: "1", "cligym.task": owner_task, "cligym.owner": f"{socket.gethostname()}:{os.getpid()}"},
        network_mode="bridge" if network else "none", hostname="sandbox", init=True,
        mem_limit=limits.memory, pids_limit=limits.pids, nano_cpus=int(limits.cpus * 1e9),
        cap_drop=["ALL"], cap_add=_CAPABILITIES)


def tar_files(files: Mapping[str, bytes]) -> bytes:
    """A tar of `files` (relative path -> bytes) with entries for their folders, for `put_archive`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folders = {parent for path in files for parent in PurePosixPath(path).parents} - {PurePosixPath(".")}
        for folder in sorted(folders, key=lambda p: len(p.parts)):
            archive.addfile(_dir_entry(str(folder)))
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Sandbox:
    def __init__(self, image: str, *, task_id: str = "", network: bool = False, limits: Limits = Limits(),
                 client: docker.DockerClient | None = None) -> None:
        self.client = client or connect()
        self.image = image
        self.task_id = task_id
        self.network = network
        self.limits = limits
        self.name = f"cligym-{(task_id or 'sandbox')[:40]}-{secrets.token_hex(4)}"
        self.container = None
        self.shell: PersistentShell | None = None
        self.started_at = 0.0
        self._own_restarts: list[tuple[float, float]] = []  # (start, end) of restarts this sandbox asked for

    def start(self) -> "Sandbox":
        self.started_at = time.time()
        self.container = self.client.containers.run(
            self.image, entrypoint=["sleep", "infinity"], command=[], detach=True, name=self.name,
            **container_settings(self.limits, network=self.network, owner_task=self.task_id))
        _open_sandboxes.add(self)
        try:
            self.shell = PersistentShell(self.client.api, self.container.id,
                                         max_output_bytes=self.limits.max_output_bytes,
                                         before_restart=self.kill_everything)
            self.shell.start()
        except BaseException:
            self.close()
            raise
        return self

    def run(self, command: str, timeout: float = 30.0) -> CommandResult:
        """Run a command in the sandbox's persistent shell."""
        assert self.shell is not None, "call start() first"
        return self.shell.run(command, timeout)

    def put_files(self, directory: str, files: Mapping[str, bytes]) -> None:
        """Copy files (relative path -> bytes) into `directory`, leaving the modes of existing folders alone."""
        assert self.container is not None
        self.container.exec_run(["mkdir", "-p", directory])
        self.container.put_archive(directory, tar_files(files))

    def kill_everything(self) -> None:
        """Restart the container: every process in it dies (fork-bomb orphans, daemons); the filesystem stays.

        A container that is no longer running is not brought back: that ends the episode (ShellError)."""
        assert self.container is not None
        try:  # a container whose main process was just killed may still be reported running for a moment
            self.container.wait(timeout=0.5)
            raise ShellError("the container stopped")
        except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
            pass  # still running: restart it
        began = time.time()
        self.container.restart(timeout=0)
        self._own_restarts.append((began, time.time()))

    def stopped_from_outside(self) -> bool:
        """Whether the daemon recorded a kill or stop of this container that this sandbox did not ask for.

        (A process inside the container killing its main process leaves a `die` event only.)"""
        assert self.container is not None
        events = self.client.events(since=int(self.started_at) - 1, until=time.time() + 0.2, decode=True,
                                    filters={"container": self.container.id, "event": ["kill", "stop"]})
        return any(not any(began - 1 <= event.get("time", 0) <= ended + 1 for began, ended in self._own_restarts)
                   for event in events)

    def changes(self) -> list[tuple[str, int]]:
        """What the policy changed, as `docker diff` (path, kind: 0 modified, 1 added, 2 deleted).

        With a local daemon the overlay upper directory is read directly: that is the exact set of changes, and
        it costs a walk of what changed only, where this daemon's own diff walks the whole image (about 1 s)."""
        assert self.container is not None
        self.container.reload()
        upper = (self.container.attrs.get("GraphDriver") or {}).get("Data", {}).get("UpperDir", "")
        if self.container.attrs.get("Driver") == "overlay2" and upper and os.access(upper, os.R_OK | os.X_OK):
            return overlay_changes(upper)
        return [(change["Path"], change["Kind"]) for change in self.container.diff() or []]

    def disk_usage(self) -> int:
        """Bytes in the container's writable layer (what the policy wrote), as the Docker daemon counts them."""
        assert self.container is not None
        found = self.client.api.containers(all=True, filters={"id": self.container.id}, size=True)
        return int(found[0].get("SizeRw") or 0) if found else 0

    def read_file(self, path: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        assert self.container is not None
        try:
            stream, _ = self.container.get_archive(path)
        except NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            extracted = archive.extractfile(member) if member else None
            return extracted.read() if extracted else None

    def close(self) -> None:
        """Remove the container; safe to call twice."""
        if self.shell is not None:
            self.shell.close()
            self.shell = None
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except NotFound:
                pass
            except APIError as error:
                if "already in progress" not in str(error):
                    raise
            self.container = None
        _open_sandboxes.discard(self)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


MAX_DEPTH = 256  # folders nested deeper are the policy's doing: no repair makes them, and the walk must stay finite


def overlay_changes(upper: str) -> list[tuple[str, int]]:
    """Changes recorded in an overlay upper directory: whiteouts (0:0 character devices) are deletions.

    Walked by directory file descriptor, so paths longer than PATH_MAX are listed too; the walk holds one
    descriptor and a few stack frames per level, so folders nested past `MAX_DEPTH` raise `ChangesUnlistable`."""
    found: list[tuple[str, int]] = []
    for folder, dirs, files, fd in os.fwalk(upper, follow_symlinks=False):
        prefix = folder[len(upper):]
        if prefix.count("/") >= MAX_DEPTH:
            raise ChangesUnlistable(f"folders nested more than {MAX_DEPTH} deep: {prefix[:200]}...")
        for name in dirs + files:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            deleted = stat.S_ISCHR(info.st_mode) and info.st_rdev == 0
            found.append((f"{prefix}/{name}", 2 if deleted else 0))
    return found


def _dir_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def cleanup(client: docker.DockerClient | None = None, *, stale_only: bool = False) -> list[str]:
    """Remove cligym containers and grading snapshots: all of them, or only those whose owning process on this
    host is gone."""
    client = client or connect()
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL}, ignore_removed=True):
        if stale_only and _owner_alive(container.labels.get("cligym.owner", "")):
            continue
        try:
            container.remove(force=True)
            removed.append(container.name)
        except NotFound:
            pass
    for image in client.api.images(filters={"label": SNAPSHOT_LABEL}):  # plain dicts: no look-up per image
        if stale_only and _owner_alive((image.get("Labels") or {}).get("cligym.owner", "")):
            continue
        try:
            client.images.remove(image["Id"], force=True)
            removed.append(image["Id"].split(":")[-1][:12])
        except (NotFound, APIError):
            pass
    return removed


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's container: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _close_all() -> None:
    for sandbox in list(_open_sandboxes):
        try:
            sandbox.close()
        except Exception:
            pass
