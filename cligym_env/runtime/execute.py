"""Run one argv in a container (no shell, no `PATH` lookup) with a deadline and a cap on what it prints.

The grader uses this, not the persistent shell: in a grading container nothing of the policy's may run except
what the tests themselves import, so commands are absolute paths into the read-only harness.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import docker

from cligym_env.runtime.output import CappedOutput, demultiplex
from cligym_env.runtime.stream import open_stream, readable


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when it ran past its deadline
    output: str  # stdout and stderr together, head and tail kept
    timed_out: bool = False
    truncated: bool = False  # the middle of the output was dropped


def run_argv(api: docker.APIClient, container_id: str, argv: Sequence[str], *, timeout: float,
             env: Mapping[str, str] | None = None, max_output_bytes: int = 65_536, workdir: str = "/") -> ExecResult:
    """Run `argv`; past `timeout` seconds stop reading and report a timeout (the caller discards the container)."""
    exec_id = api.exec_create(container_id, list(argv), stdin=False, tty=False, environment=dict(env or {}),
                              workdir=workdir)["Id"]
    sock = open_stream(api.exec_start(exec_id, socket=True))
    output, frames = CappedOutput(max_output_bytes), bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not readable(sock, remaining):
                return ExecResult(None, output.text(), timed_out=True)
            data = sock.recv(1 << 16)
            if not data:
                break
            demultiplex(frames, data, output)
    finally:
        sock.close()
    for _ in range(50):  # the stream closes a moment before the exit code is recorded
        state = api.exec_inspect(exec_id)
        if not state.get("Running"):
            return ExecResult(state.get("ExitCode"), output.text(), truncated=output.truncated)
        time.sleep(0.02)
    return ExecResult(None, output.text(), timed_out=True)

