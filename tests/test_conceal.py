"""Broken images keep the breakage's effect but not its trail: file times and package-manager logs match gold's.

Real Docker builds from the conftest gold image (the examples' healthy project).
"""

from __future__ import annotations

import io
import shlex
import tarfile

import docker
import pytest

from cligym_env.generator.types import Breakage, GoldEnvironment
from cligym_env.generator.validate import broken_environment
from cligym_env.images import build_environment
from cligym_env.images.conceal import STAGE, TRAILS, conceal
from tests.conftest import EXAMPLES

LISTING = r"find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -printf '%T@ %p\n'"
RUNTIME = {"/", "/etc", "/.dockerenv", "/etc/mtab", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
CREATED = "/usr/lib/python3.11/zz_local_settings.py"
# Modifies a config file and a compiled module (same size), uninstalls a pip package, removes a Debian package,
# creates a file and fills a cache.
BREAKAGE = ("RUN sed -i 's/^currency = EUR$/currency EUR/' /etc/inventory/settings.ini \\\n"
            " && pip uninstall -y unitconv \\\n"
            " && sed -i 's|^ONE_SIXTH = 1.0/6.0$|ONE_SIXTH = 1.0/7.0|' /usr/lib/python3.11/colorsys.py\n"
            f"RUN dpkg -r e2fsprogs && echo 'DEBUG = True' > {CREATED} \\\n"
            " && mkdir -p /root/.cache/pip/http && echo cached > /root/.cache/pip/http/entry\n")
# Then takes away what a clean-up would use: find, touch, python, /bin/sh, a shared library of coreutils, /tmp.
CRIPPLE = ("RUN rm -rf /tmp && ln -s /var/tmp/gone /tmp && echo /usr/lib/libgone.so > /etc/ld.so.preload"
           " && rm /usr/bin/find /usr/bin/touch /usr/bin/python3.11 && : > \"$(readlink -f /lib/*/libpcre2-8.so.0)\""
           " && rm /usr/bin/sh\n")


def broken(client: docker.DockerClient, gold: GoldEnvironment, dockerfile: str) -> str:
    return build_environment(client, broken_environment(gold, Breakage("test", "other", "t", "", dockerfile, "")))


def run(client: docker.DockerClient, image: str, script: str) -> str:
    """The script's stdout and stderr, whatever its exit status."""
    return client.containers.run(image, ["bash", "-c", f"{script}\ntrue"], remove=True, stderr=True).decode()


def mtimes(client: docker.DockerClient, image: str) -> dict[str, float]:
    lines = run(client, image, LISTING).splitlines()
    return {path: float(time) for time, path in (line.split(" ", 1) for line in lines) if path not in RUNTIME}


def newest(times: dict[str, float], count: int = 30) -> list[tuple[str, float]]:
    return sorted(times.items(), key=lambda item: (item[1], item[0]))[-count:]


def test_the_breakage_leaves_no_trail_in_times_logs_or_caches(docker_client, gold):
    image = broken(docker_client, gold, BREAKAGE)
    layer = docker_client.images.get(image).history()[1]["CreatedBy"]  # [0] is the build's label
    assert STAGE in layer and "pip uninstall" in layer and "dpkg -r" in layer  # one layer: prelude, lines, epilogue
    before, after = mtimes(docker_client, gold.image), mtimes(docker_client, image)

    # (a) the newest files are gold's newest, less what the breakage deleted; nothing kept a new time.
    assert newest(after) == newest({path: time for path, time in before.items() if path in after})
    assert {path for path in before.keys() & after.keys() if before[path] != after[path]} == set()
    assert set(after) - set(before) == {CREATED}  # the cache is gone; the new file looks as old as its siblings
    siblings = [t for p, t in before.items() if p.startswith("/usr/lib/python3.11/") and p.count("/") == 4]
    assert after[CREATED] == max(siblings) < max(before.values())

    # (b) package-manager logs and backups are gold's, byte for byte.
    digests = f"for f in {' '.join(TRAILS)}; do sha256sum $f 2>/dev/null || echo absent $f; done"
    assert run(docker_client, image, digests) == run(docker_client, gold.image, digests)
    assert "e2fsprogs" not in run(docker_client, image, "tail -n 3 /var/log/dpkg.log")

    # (c) no record, marker or copied tool is left, in the file system or in the image's own /dev.
    assert run(docker_client, image, "find / -xdev -name '*cligym-pre*'") == ""
    container = docker_client.containers.create(image, ["true"])
    try:
        names = tarfile.open(fileobj=io.BytesIO(b"".join(container.get_archive("/dev")[0]))).getnames()
    finally:
        container.remove(force=True)
    assert not [name for name in names if "cligym" in name]

    # (d) the breakage still has its effect; the changed module's bytecode was compiled again (its old .pyc would
    # match the restored mtime and size), so importing it uses the change and writes no fresh .pyc under /usr.
    effect = run(docker_client, image, "grep currency /etc/inventory/settings.ini; "
                                       "python -c 'import unitconv' 2>&1 | tail -n1; "
                                       "dpkg -s e2fsprogs 2>&1 | grep -c 'ok installed'; "
                                       "cat /root/.cache/pip/http/entry 2>&1; "
                                       "python -c 'import colorsys; print(colorsys.ONE_SIXTH)'; "
                                       "find /usr -newer /etc/hostname")
    assert effect.splitlines() == ["currency EUR", "ModuleNotFoundError: No module named 'unitconv'", "0",
                                   "cat: /root/.cache/pip/http/entry: No such file or directory", str(1 / 7)]


def test_the_epilogue_needs_nothing_the_breakage_can_take_away(docker_client, gold):
    """find, touch, python, /bin/sh and a library coreutils load are gone, /tmp is a dangling link: the build still
    conceals. Checked from outside (no tool is left inside), through the archive API's stat of each path."""
    image = broken(docker_client, gold, BREAKAGE + CRIPPLE)
    paths = ["/usr/bin", "/tmp", "/etc/ld.so.preload", "/etc/inventory/settings.ini", "/var/log/dpkg.log", "/root"]
    stats = {}
    for tag in (gold.image, image):
        container = docker_client.containers.create(tag, ["true"])
        try:
            for path in paths:
                try:
                    stream, stat = container.get_archive(path, chunk_size=1)
                    stream.close()
                    stats[tag, path] = stat
                except docker.errors.NotFound:
                    stats[tag, path] = None
        finally:
            container.remove(force=True)
    assert stats[image, "/tmp"]["linkTarget"] == "/var/tmp/gone"  # broken as asked
    assert stats[gold.image, "/etc/ld.so.preload"] is None and stats[image, "/etc/ld.so.preload"]["size"] > 0
    for path in paths:
        if stats[gold.image, path]:
            assert stats[image, path]["mtime"] == stats[gold.image, path]["mtime"], path
    created = docker_client.images.get(gold.image).attrs["Created"]  # the new file looks older than gold itself
    assert stats[image, "/etc/ld.so.preload"]["mtime"][:19] <= created[:19]


def test_lines_are_wrapped_as_docker_runs_them():
    wrapped = conceal("# a comment\nRUN echo 'a b' \\\n  && true\n\nrun  false\n")
    assert wrapped.startswith("RUN set -e; ") and wrapped.endswith("'\n")
    assert " && /bin/sh -c 'echo '\"'\"'a b'\"'\"'   && true' \\\n && /bin/sh -c false \\\n" in wrapped
    assert conceal("") == "" and conceal("# nothing\n") == "# nothing\n"
    for line in ("COPY x /x", "RUN [\"sh\", \"-c\", \"true\"]", "ENV A=1"):
        with pytest.raises(ValueError):
            conceal(line)


def test_oracle_repairs_a_concealed_example(example_registry, docker_client):
    import gymnasium as gym

    import cligym_env  # noqa: F401  (registers CLIGym-v0)
    from agents.baselines import NoopPolicy, OraclePolicy
    from agents.rollout import run_episode

    task = example_registry.get("example-corrupted-config")
    assert STAGE in task.environment.dockerfile.split("# ... and what broke it.")[1]
    env = gym.make("CLIGym-v0", registry=example_registry.path, max_steps=5, command_timeout=30)
    try:
        assert run_episode(env, OraclePolicy(example_registry), task_id=task.id).reward == 1.0
        assert run_episode(env, NoopPolicy(), task_id=task.id).reward == 0.0
    finally:
        env.close()


@pytest.mark.parametrize("folder", sorted(EXAMPLES.glob("*/environment/Dockerfile")),
                         ids=lambda folder: folder.parent.parent.name)
def test_shipped_examples_are_concealed_with_the_current_wrapper(folder):
    broken = folder.read_text().split("# ... and what broke it.\n")[1]
    line = broken.splitlines()[1].removeprefix(" && ").removesuffix(" \\")
    assert broken == conceal(f"RUN {shlex.split(line)[2]}")
