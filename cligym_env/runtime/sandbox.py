"""A sandbox: one labelled, resource-limited container of a task image, with its persistent shell.

Containers carry `cligym.*` labels and the owning process, so `cleanup()` can find any left by a crashed
run; every sandbox this process opens is also closed at interpreter exit.
"""

from __future__ import annotations

import atexit
import io
import os
import secrets
import shlex
import socket
import tarfile
import weakref
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Mapping

import docker
from docker.errors import APIError, NotFound

from cligym_env.runtime.docker_client import connect
from cligym_env.runtime.shell import CommandResult, PersistentShell

LABEL = "cligym.managed"
_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETFCAP", "NET_BIND_SERVICE"]
_open_sandboxes: "weakref.WeakSet[Sandbox]" = weakref.WeakSet()


@dataclass(frozen=True)
class Limits:
    memory: str = "2g"
    pids: int = 1024
    cpus: float = 1.0
    max_output_bytes: int = 32_768


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

    def start(self) -> "Sandbox":
        self.container = self.client.containers.run(
            self.image, entrypoint=["sleep", "infinity"], command=[], detach=True, name=self.name,
            labels={LABEL: "1", "cligym.task": self.task_id, "cligym.owner": f"{socket.gethostname()}:{os.getpid()}"},
            network_mode="bridge" if self.network else "none", hostname="sandbox", init=True,
            mem_limit=self.limits.memory, pids_limit=self.limits.pids, nano_cpus=int(self.limits.cpus * 1e9),
            cap_drop=["ALL"], cap_add=_CAPABILITIES,
        )
        _open_sandboxes.add(self)
        try:
            self.shell = PersistentShell(self.client.api, self.container.id, max_output_bytes=self.limits.max_output_bytes)
            self.shell.start()
        except BaseException:
            self.close()
            raise
        return self

    def run(self, command: str, timeout: float = 30.0) -> CommandResult:
        """Run a command in the sandbox's persistent shell."""
        assert self.shell is not None, "call start() first"
        return self.shell.run(command, timeout)

    def run_fresh(self, command: str, timeout: float, env: Mapping[str, str] | None = None) -> CommandResult:
        """Run a command in a new shell, untouched by what the policy did to its own shell's state."""
        assert self.container is not None, "call start() first"
        shell = PersistentShell(self.client.api, self.container.id, max_output_bytes=self.limits.max_output_bytes)
        shell.start()
        try:
            exports = "".join(f"export {key}={shlex.quote(value)}; " for key, value in (env or {}).items())
            return shell.run(exports + command, timeout)
        finally:
            shell.close()

    def put_files(self, directory: str, files: Mapping[str, bytes]) -> None:
        """Copy files (relative path -> bytes) into `directory`, leaving the modes of existing folders alone."""
        assert self.container is not None
        self.container.exec_run(["mkdir", "-p", directory])
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            folders = {parent for path in files for parent in PurePosixPath(path).parents} - {PurePosixPath(".")}
            for folder in sorted(folders, key=lambda p: len(p.parts)):
                archive.addfile(_dir_entry(str(folder)))
            for path, data in sorted(files.items()):
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
        self.container.put_archive(directory, buffer.getvalue())

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


def _dir_entry(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def cleanup(client: docker.DockerClient | None = None, *, stale_only: bool = False) -> list[str]:
    """Remove cligym containers: all of them, or only those whose owning process on this host is gone."""
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
