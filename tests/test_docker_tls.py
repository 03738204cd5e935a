"""A real episode over a TLS-protected Docker daemon (DOCKER_HOST=tcp://..., DOCKER_TLS_VERIFY, DOCKER_CERT_PATH).

A certificate authority, a server and a client certificate are made with `openssl`; a TLS-terminating proxy that
requires the client certificate stands in front of the local daemon socket on 127.0.0.1. Every byte of the episode
(builds, exec streams of the persistent shell, the grading container) goes through it.
"""

from __future__ import annotations

import select
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import docker
import gymnasium as gym
import pytest
import requests

import cligym_env  # noqa: F401  (registers CLIGym-v0)
from cligym_env.runtime.shell import script_command

DAEMON_SOCKET = "/var/run/docker.sock"


def make_certificates(folder: Path) -> None:
    """ca.pem, cert.pem / key.pem (client) and server-cert.pem / server-key.pem, as DOCKER_CERT_PATH expects."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=cligym test CA")
    server = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"
    for name, subject, usage in (("server", "/CN=127.0.0.1", server),
                                 ("client", "/CN=cligym client", "extendedKeyUsage=clientAuth")):
        (folder / f"{name}.ext").write_text(usage + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                "-subj", subject)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-out", f"{name}-cert.pem", "-days", "1", "-extfile", f"{name}.ext")
    (folder / "cert.pem").write_bytes((folder / "client-cert.pem").read_bytes())
    (folder / "key.pem").write_bytes((folder / "client-key.pem").read_bytes())


class TLSProxy:
    """127.0.0.1:<port>, TLS with client-certificate verification, forwarding to the daemon's unix socket."""

    def __init__(self, certs: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.pem"))
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_cert_chain(certs / "server-cert.pem", certs / "server-key.pem")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            raw.close()
            return
        self.connections += 1
        daemon = socket.socket(socket.AF_UNIX)
        daemon.connect(DAEMON_SOCKET)
        try:
            while True:
                ready = [client] if client.pending() else select.select([client, daemon], [], [], 120)[0]
                if not ready:
                    return
                for source in ready:
                    data = source.recv(1 << 16)
                    if not data:
                        return
                    (daemon if source is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            daemon.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tls_daemon(tmp_path: Path, docker_client) -> Iterator[tuple[TLSProxy, Path]]:
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certificates(certs)
    proxy = TLSProxy(certs)
    yield proxy, certs
    proxy.close()


def test_an_episode_over_a_tls_daemon_socket(tls_daemon, example_registry, monkeypatch):
    proxy, certs = tls_daemon
    url = f"https://127.0.0.1:{proxy.port}"
    stranger = docker.DockerClient(base_url=url, version="1.24",
                                   tls=docker.tls.TLSConfig(ca_cert=str(certs / "ca.pem"), verify=True))
    stranger.api.trust_env = False
    # No client certificate: the handshake fails (TLS 1.3 reports it as "certificate required" or, racing the
    # close, as an EOF), and the proxy counts a refusal, never a connection to the daemon.
    with pytest.raises(requests.exceptions.SSLError):
        stranger.ping()
    for _ in range(50):
        if proxy.refused:
            break
        time.sleep(0.1)
    assert proxy.refused >= 1 and proxy.connections == 0

    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(certs))
    env = gym.make("CLIGym-v0", registry=example_registry.path, task_ids=["example-bad-permission"],
                   command_timeout=20)
    try:
        observation, info = env.reset(seed=0)
        assert env.unwrapped.client.api.base_url == url  # connect() honoured the variables
        observation, *_ = env.step("cd /app && export WHERE=tls && ls -l bin | tail -1")
        assert "inventory-report" in observation
        observation, reward, terminated, truncated, info = env.step('echo "$WHERE in $PWD"; sleep 0.2; echo done')
        assert observation == "tls in /app\ndone\n"  # the persistent shell kept its state over the TLS stream
        env.step(script_command(example_registry.get("example-bad-permission").solution))
        observation, reward, terminated, truncated, info = env.step("submit")
        assert (reward, terminated, info["error"]) == (1.0, True, None), info
    finally:
        env.close()
    assert proxy.connections >= 2
