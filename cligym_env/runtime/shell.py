"""One long-lived bash per container, driven over a `docker exec` stream with a sentinel after each command.

Why: state (cwd, exported variables, functions) must persist between steps, and a persistent shell costs
about 0.1 ms per command against about 60 ms for a fresh `exec_run`. Each command runs as
`eval $'<command>' </dev/null` so it cannot swallow the protocol from stdin (`cat`, `read x`,
`python3` see end-of-file), and a quoted string cannot break the framing whatever the policy types.
(No `{ ...; }` group: after an eval syntax error bash stops parsing the next `{` as a keyword.)
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import docker

from cligym_env.runtime.output import CappedOutput, demultiplex
from cligym_env.runtime.stream import open_stream, readable
from cligym_env.error import ShellError

SHELL_ENV = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "DEBIAN_FRONTEND": "noninteractive"}

# Kills every descendant of the shell (not the shell), then every process started since the command began
# (orphans it left by double-forking or setsid), a few rounds so a fork bomb cannot outrun it.
# Arguments: the shell's pid, the command's age in clock ticks (100 a second; start times count them since boot).
_KILL_COMMAND = r"""
collect() { local c; for c in $(cat /proc/$1/task/*/children 2>/dev/null); do echo $c; collect $c; done; }
kill -9 $(collect "$1") 2>/dev/null
read -r up _ < /proc/uptime; since=$(( 10#${up/./} - $2 ))
for round in 1 2 3; do
  victims=()
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}; [ "$pid" = 1 ] || [ "$pid" = $$ ] || [ "$pid" = "$1" ] || {
      read -r stat < $p/stat 2>/dev/null || continue; fields=(${stat##*) }); [ "${fields[19]:-0}" -ge "$since" ] &&
      victims+=($pid); }
  done
  [ ${#victims[@]} -eq 0 ] && break; kill -9 "${victims[@]}" 2>/dev/null
done; exit 0
"""


@dataclass(frozen=True)
class CommandResult:
    """What one command did. `exit_code` is None when it timed out or took the shell down with it."""

    command: str
    output: str
    exit_code: int | None
    duration: float
    timed_out: bool = False
    output_truncated: bool = False
    shell_restarted: bool = False


def ansi_c_quote(text: str) -> str:
    """Quote `text` as a bash $'...' string made of printable ASCII only, so any input stays one word."""
    out = []
    for byte in text.replace("\0", "").encode("utf-8", errors="surrogateescape"):
        if 0x20 <= byte < 0x7F and byte not in (0x27, 0x5C):
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


def script_command(script: str) -> str:
    """One command that runs a whole bash script (an oracle solution, a repair) in a child bash, via a heredoc."""
    return f"bash <<'CLIGYM_SCRIPT_EOF'\n{script.rstrip()}\nCLIGYM_SCRIPT_EOF"


class PersistentShell:
    def __init__(self, api: docker.APIClient, container_id: str, *, max_output_bytes: int = 32_768,
                 before_restart: Callable[[], None] | None = None) -> None:
        self.api = api
        self.before_restart = before_restart  # e.g. kill every process of the container, not only the shell
        self.container_id = container_id
        self.max_output_bytes = max_output_bytes
        self._marker = f"__CLIGYM_DONE_{secrets.token_hex(8)}__"
        self._done = re.compile(rb"\n" + self._marker.encode() + rb"(\d+)\n$")
        self._sock: Any = None  # a socket.socket, ssl.SSLSocket or paramiko Channel: see open_stream
        self._frames = bytearray()
        self.pid = 0

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self, clean: bool = False) -> None:
        """Start bash with the image's environment, as `docker exec` gives it (`$BASH_ENV` honoured)."""
        env = {**SHELL_ENV, "BASH_ENV": ""} if clean else SHELL_ENV
        exec_id = self.api.exec_create(self.container_id, ["bash"], stdin=True, tty=False, environment=env)["Id"]
        self._sock = open_stream(self.api.exec_start(exec_id, socket=True))
        self._frames.clear()
        # The set-up line answers like a command does, with the shell's pid in place of an exit code.
        setup = f"exec 2>&1; unset PROMPT_COMMAND; PS1=''; echo; echo {self._marker}$$"
        result = self._exchange(setup + "\n", timeout=20.0)
        if result.exit_code is None:
            self._close_socket()
            if not clean:  # a `$BASH_ENV` script that exits or hangs must not make the container unusable
                return self.start(clean=True)
            raise ShellError(f"bash did not start in container {self.container_id[:12]}: {result.output[-500:]}")
        self.pid = result.exit_code

    def close(self) -> None:
        self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            for end in (lambda: self._sock.shutdown(socket.SHUT_RDWR), self._sock.close):  # bash sees end of input
                try:
                    end()
                except OSError:
                    pass
            self._sock = None

    # -- running commands --------------------------------------------------------------------------------
    def run(self, command: str, timeout: float = 30.0) -> CommandResult:
        """Run one command; whatever it does (hang, flood, exit the shell), the next call works."""
        started = time.monotonic()
        if self._sock is None:
            self._restart()
        line = f"eval {ansi_c_quote(command)} </dev/null; printf '\\n{self._marker}%d\\n' $?\n"
        result = self._exchange(line, timeout)
        if result.timed_out:
            result = self._interrupt(result, timeout, time.monotonic() - started)
        restarted = result.exit_code is None
        if restarted:  # the shell is gone or wedged: give the episode a new one
            cause = "timed out and could not be interrupted" if result.timed_out else "ended the shell"
            self._restart()
            result = CommandResult(
                command, result.output + f"\n[cligym: the command {cause}; a new shell was started, "
                "so the working directory and variables were reset]", None, 0.0,
                result.timed_out, result.output_truncated)
        return CommandResult(command, result.output, result.exit_code, time.monotonic() - started,
                             result.timed_out, result.output_truncated, restarted)

    def _interrupt(self, late: CommandResult, timeout: float, age: float) -> CommandResult:
        """Kill what the command started, then give the shell a moment to report back."""
        killer = self.api.exec_create(self.container_id,
                                      ["bash", "-c", _KILL_COMMAND, "-", str(self.pid), str(int(age * 100) + 5)])
        self.api.exec_start(killer["Id"])
        rest = self._exchange("", timeout=2.0)
        output = late.output + rest.output
        if rest.exit_code is not None:
            output += f"\n[cligym: the command timed out after {timeout:g} s and was interrupted]"
        return CommandResult(late.command, output, rest.exit_code, 0.0, True,
                             late.output_truncated or rest.output_truncated)

    def _restart(self) -> None:
        self._close_socket()
        if self.before_restart is not None:
            self.before_restart()
        elif self.pid:
            self.api.exec_start(self.api.exec_create(self.container_id, ["bash", "-c", f"kill -9 {self.pid}"])["Id"])
        self.start()

    def _exchange(self, text: str, timeout: float) -> CommandResult:
        """Send `text`, read until the sentinel, the deadline, or end of stream."""
        output = CappedOutput(self.max_output_bytes)
        assert self._sock is not None
        try:
            if text:
                self._sock.sendall(text.encode())
        except OSError:
            self._close_socket()
            return CommandResult(text, "", None, 0.0)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not readable(self._sock, remaining):
                return CommandResult(text, output.text(), None, 0.0, timed_out=True, output_truncated=output.truncated)
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                self._close_socket()
                return CommandResult(text, output.text(), None, 0.0, output_truncated=output.truncated)
            demultiplex(self._frames, data, output)
            match = self._done.search(output.last(len(self._marker) + 16))
            if match:
                output.drop_last(len(match.group(0)))
                return CommandResult(text, output.text(), int(match.group(1)), 0.0,
                                     output_truncated=output.truncated)

