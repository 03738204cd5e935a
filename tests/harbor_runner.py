"""A minimal runner with Harbor's semantics, for the tests (the `harbor` package needs Python >= 3.12).

As Harbor's trial does: build environment/, start the container, (oracle) upload solution/ to /solution and run
solve.sh, then the verifier: upload tests/ to /tests, run `bash /tests/test.sh > /logs/verifier/test-stdout.txt`
in the image's working directory, and read /logs/verifier/reward.json (its "reward") or else reward.txt.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
from pathlib import Path
from typing import Callable

import docker
from docker.errors import NotFound

from cligym_env.images import build_environment
from cligym_env.runtime.sandbox import LABEL
from cligym_env.tasks import Environment


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _upload(container, files: dict[str, bytes], target: str) -> None:  # type: ignore[no-untyped-def]
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{target.strip('/')}/{name}")
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    container.exec_run(["mkdir", "-p", target])
    container.put_archive("/", archive.getvalue())


def _read(container, path: str) -> bytes | None:  # type: ignore[no-untyped-def]
    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        return handle.read() if handle else None


def run_trial(client: docker.DockerClient, folder: Path, *, oracle: bool,
              agent: Callable[[object], None] | None = None, init: bool = False) -> float:
    """The reward of one trial of the Harbor task in `folder`; `agent(container)` may act before verification;
    `init` runs the container under docker-init (compose's `init: true`)."""
    context = _tree(folder / "environment")
    image = build_environment(client, Environment(context.pop("Dockerfile").decode(), context),
                              what=f"harbor task {folder.name}")
    container = client.containers.run(image, entrypoint=["sleep", "infinity"], command=[], detach=True,
                                      network_mode="none", init=init,
                                      labels={LABEL: "1", "cligym.owner": f"{socket.gethostname()}:{os.getpid()}"})
    try:
        container.exec_run(["mkdir", "-p", "/logs/agent", "/logs/verifier", "/logs/artifacts"])
        if oracle:
            _upload(container, _tree(folder / "solution"), "/solution")
            container.exec_run(["bash", "/solution/solve.sh"])
        if agent:
            agent(container)
        _upload(container, _tree(folder / "tests"), "/tests")
        container.exec_run(["bash", "-c", "bash /tests/test.sh > /logs/verifier/test-stdout.txt 2>&1"])
        document = _read(container, "/logs/verifier/reward.json")
        if document is not None and "reward" in json.loads(document):
            return float(json.loads(document)["reward"])
        text = _read(container, "/logs/verifier/reward.txt")
        if text is None:
            raise AssertionError(f"{folder.name}: no reward file; test output:\n"
                                 f"{(_read(container, '/logs/verifier/test-stdout.txt') or b'').decode()[-2000:]}")
        return float(text.decode().strip())
    finally:
        container.remove(force=True)
