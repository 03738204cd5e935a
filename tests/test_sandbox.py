"""Containers: isolation settings, unique names, file transfer, and nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cligym_env.images import BASE_IMAGE
from cligym_env.runtime.sandbox import LABEL, Limits, Sandbox, cleanup


def test_container_is_labelled_limited_and_offline(docker_client):
    with Sandbox(BASE_IMAGE, task_id="iso", client=docker_client, limits=Limits(memory="512m", pids=256)) as box:
        attrs = docker_client.api.inspect_container(box.container.id)
        host = attrs["HostConfig"]
        assert attrs["Config"]["Labels"][LABEL] == "1"
        assert attrs["Config"]["Labels"]["cligym.task"] == "iso"
        assert host["NetworkMode"] == "none" and not host["Privileged"]
        assert host["Memory"] == 512 * 1024**2 and host["PidsLimit"] == 256
        assert host["CapDrop"] == ["ALL"] and "SYS_ADMIN" not in host["CapAdd"]
        assert (box.run("cat /sys/class/net/*/operstate 2>/dev/null | wc -l; ls /sys/class/net").output.split()
                == ["1", "lo"])


def test_parallel_sandboxes_of_one_task_do_not_collide(docker_client):
    with Sandbox(BASE_IMAGE, task_id="same", client=docker_client) as first, \
            Sandbox(BASE_IMAGE, task_id="same", client=docker_client) as second:
        assert first.name != second.name
        first.run("touch /only-in-first")
        assert second.run("test -e /only-in-first").exit_code == 1


def test_files_in_and_out(docker_client):
    with Sandbox(BASE_IMAGE, client=docker_client) as box:
        box.run("mkdir -p /data && chmod 700 /data")
        box.put_files("/data/tests", {"a/b.py": b"print(1)\n", "c.bin": bytes(range(256))})
        assert box.read_file("/data/tests/c.bin") == bytes(range(256))
        assert box.read_file("/data/tests/a/b.py") == b"print(1)\n"
        assert box.read_file("/data/missing") is None
        assert box.run("stat -c %a /data").output == "700\n"  # existing folders keep their mode


def test_close_is_idempotent_and_removes_the_container(docker_client):
    box = Sandbox(BASE_IMAGE, client=docker_client).start()
    name = box.name
    box.close()
    box.close()
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_exception_inside_with_leaves_no_container(docker_client):
    with pytest.raises(RuntimeError):
        with Sandbox(BASE_IMAGE, client=docker_client) as box:
            name = box.name
            raise RuntimeError("boom")
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_process_exit_without_close_leaves_no_container(docker_client):
    script = (f"from cligym_env.runtime.sandbox import Sandbox; b = Sandbox({BASE_IMAGE!r}, task_id='atexit').start(); "
              "print(b.name)")
    name = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert name.startswith("cligym-atexit-")
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_cleanup_removes_containers_of_crashed_runs(docker_client):
    script = (f"import os; from cligym_env.runtime.sandbox import Sandbox; b = Sandbox({BASE_IMAGE!r}, task_id='crash')"
              ".start(); print(b.name, flush=True); os._exit(1)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    name = run.stdout.strip()
    assert docker_client.containers.list(all=True, filters={"name": name}), "the crash should have left it"
    with Sandbox(BASE_IMAGE, client=docker_client) as alive:
        removed = cleanup(docker_client, stale_only=True)
        assert name in removed and alive.name not in removed
    assert not docker_client.containers.list(all=True, filters={"name": name})
    assert os.getpid()  # this process, the owner of `alive`, was left alone above


def test_sigterm_to_the_cli_leaves_no_container(docker_client, tmp_path):
    """A job stopped by its scheduler (SIGTERM) still removes its containers."""
    import signal
    import time

    marker = tmp_path / "started"
    script = (f"import time, pathlib; from cligym_env.cli import _on_start; _on_start(); "
              f"from cligym_env.runtime.sandbox import Sandbox; "
              f"b = Sandbox({BASE_IMAGE!r}, task_id='sigterm').start(); "
              f"pathlib.Path({str(marker)!r}).write_text(b.name); time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", script])
    for _ in range(100):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.1)
    name = marker.read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert not docker_client.containers.list(all=True, filters={"name": name})
