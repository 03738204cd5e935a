"""The grading harness: everything the grader runs inside a grading container, from outside the policy's world.

A Docker volume (mounted read-only) holds a static busybox (file operations and hashing that do not depend on the
container's own binaries or dynamic loader), pytest with its dependencies unpacked from pinned wheels, and
`pytest_runner.py`. It is made once per Docker host from a small image, so it works the same against a remote
`DOCKER_HOST`. Each grading container mounts it under a fresh random root (`Mount`), next to the grader's own
work and report folders: a policy cannot occupy those paths in advance to make grading fail.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import io
import re
import secrets
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import resources
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path

import docker
from docker.errors import NotFound

from cligym_env import paths
from cligym_env.images.bootstrap import BASE_IMAGE
from cligym_env.images.build import build_image
from cligym_env.runtime.sandbox import LABEL
from cligym_env.error import HarnessError

IMAGE_DIR = "/harness"  # where the harness image keeps the files it fills the volume with
# pytest and exactly what it imports; pinned so every grade of every task runs the same runner.
PYTEST_WHEELS = ("pytest==9.2.0", "pluggy==1.7.0", "iniconfig==2.3.1", "packaging==26.4", "pygments==2.21.0")
# pytest's dependencies are renamed inside the harness (as pip vendors its own), so the runner never masks the
# environment's copy of them: they may be the very project under test, or what the task broke.
VENDORED = ("pluggy", "iniconfig", "packaging", "pygments")
_VENDOR_NAME = re.compile(r"\b(" + "|".join(VENDORED) + r")\b")

_DOCKERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends busybox-static && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p {IMAGE_DIR} && cp /bin/busybox {IMAGE_DIR}/busybox
COPY lib.zip {IMAGE_DIR}/lib.zip
COPY pytest_runner.py {IMAGE_DIR}/pytest_runner.py
"""
_ready: dict[str, str] = {}  # Docker host -> its complete harness volume, known in this process


@dataclass(frozen=True)
class Mount:
    """The paths of the harness and of the grader's folders in one container, under a root no one can guess."""

    root: str

    @classmethod
    def fresh(cls) -> "Mount":
        return cls(f"/.cligym-{secrets.token_hex(8)}")

    @property
    def harness(self) -> str:
        return f"{self.root}/harness"

    @property
    def busybox(self) -> str:
        return f"{self.harness}/busybox"

    @property
    def runner(self) -> str:
        return f"{self.harness}/pytest_runner.py"

    @property
    def work(self) -> str:
        return f"{self.root}/work"

    @property
    def report(self) -> str:
        return f"{self.root}/report/junit.xml"

    @property
    def summary(self) -> str:
        return f"{self.work}/summary.json"

    def volumes(self, volume: str) -> dict[str, dict[str, str]]:
        return {volume: {"bind": self.harness, "mode": "ro"}}


def harness_volume(client: docker.DockerClient) -> str:
    """The name of the read-only harness volume on this Docker host, made on first use."""
    if client.api.base_url in _ready:
        return _ready[client.api.base_url]
    files = _context()
    digest = hashlib.sha256(_DOCKERFILE.encode())
    for name in sorted(files):
        digest.update(name.encode() + hashlib.sha256(files[name]).digest())
    name = f"cligym-harness-{digest.hexdigest()[:16]}"
    image = build_image(client, f"cligym/harness:{digest.hexdigest()[:16]}", _DOCKERFILE, files, what="grading harness")
    try:
        client.volumes.get(name)
    except NotFound:
        client.volumes.create(name, labels={"cligym.harness": "1"})
    # An empty volume mounted over a folder of the image is filled with the image's content; the marker says done.
    busybox, complete = f"{IMAGE_DIR}/busybox", f"{IMAGE_DIR}/.complete"
    client.containers.run(image, [busybox, "sh", "-c", f"test -e {complete} || {busybox} touch {complete}"],
                          remove=True, network_mode="none", volumes={name: {"bind": IMAGE_DIR, "mode": "rw"}},
                          labels={LABEL: "1", "cligym.owner": f"{socket.gethostname()}:{os.getpid()}"})
    _ready[client.api.base_url] = name
    return name


def _context() -> dict[str, bytes]:
    """Build-context files: the runner and `lib.zip`, the pinned pytest wheels (downloaded once into the cache)
    with pytest's dependencies renamed `_cligym_<name>`, and each module's bytecode beside its source.

    Bytecode matters: the runner forbids the environment's bytecode (`-B`, an empty pycache prefix), and
    compiling pytest from source on every grade costs about half a second; zipimport reads the archive's own
    `.pyc` (unchecked-hash, so no timestamps are involved) and falls back to the source on other Pythons."""
    runner = resources.files("cligym_env.grading").joinpath("pytest_runner.py").read_bytes()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as lib:
        for wheel in _wheels():
            with zipfile.ZipFile(io.BytesIO(wheel.read_bytes())) as source:
                for member in source.infolist():
                    top = member.filename.split("/")[0]
                    package = top.split("-")[0]
                    if member.is_dir() or (top.endswith(".dist-info") and not (
                            package in VENDORED and member.filename.endswith("/METADATA"))):
                        continue  # the vendored ones keep their METADATA, renamed too: they read their own version
                    name, data = member.filename, source.read(member)
                    if package in VENDORED:
                        name = f"_cligym_{name}"
                    if name.endswith((".py", "/METADATA")):
                        data = _VENDOR_NAME.sub(r"_cligym_\1", data.decode("utf-8")).encode("utf-8")
                    lib.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
                    if name.endswith(".py"):
                        code = compile(data, f"harness/lib.zip/{name}", "exec", dont_inherit=True)
                        pyc = _code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False)
                        lib.writestr(zipfile.ZipInfo(name[:-3] + ".pyc", date_time=(2020, 1, 1, 0, 0, 0)), pyc)
    return {"pytest_runner.py": runner, "lib.zip": archive.getvalue()}


def _wheels(download: bool = True) -> list[Path]:
    folder = paths.cache_dir() / "harness-wheels"
    wanted = {requirement.split("==")[0]: requirement.split("==")[1] for requirement in PYTEST_WHEELS}
    found = [w for w in folder.glob("*.whl") if wanted.get(w.name.split("-")[0].lower()) == w.name.split("-")[1]]
    if len(found) == len(wanted) or not download:
        return sorted(found)
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                          "--only-binary", ":all:", "-d", str(folder), *PYTEST_WHEELS], capture_output=True, text=True)
    if run.returncode != 0:
        raise HarnessError(f"could not download the grading harness's wheels ({', '.join(PYTEST_WHEELS)}) into "
                           f"{folder}: {run.stderr[-800:]}\nCopy them there by hand on a machine without PyPI.")
    return _wheels(download=False)
