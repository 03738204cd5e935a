"""The persistent shell against a real container: state, hostile commands, limits."""

from __future__ import annotations

import pytest

from cligym_env.images import BASE_IMAGE
from cligym_env.runtime.output import CappedOutput
from cligym_env.runtime.sandbox import Limits, Sandbox
from cligym_env.runtime.shell import ansi_c_quote


@pytest.fixture
def sandbox(docker_client):
    with Sandbox(BASE_IMAGE, task_id="test-shell", client=docker_client, limits=Limits(max_output_bytes=4096)) as box:
        yield box


def test_state_persists_between_commands(sandbox):
    assert sandbox.run("cd /tmp && export GREETING=hi && shout() { echo \"$1!\"; }").exit_code == 0
    result = sandbox.run("pwd; echo $GREETING; shout hey")
    assert result.output == "/tmp\nhi\nhey!\n"
    assert result.exit_code == 0 and not result.timed_out and not result.shell_restarted


def test_exit_code_and_merged_streams(sandbox):
    result = sandbox.run("echo out; echo err >&2; exit_with() { return $1; }; exit_with 7")
    assert result.output == "out\nerr\n"
    assert result.exit_code == 7


def test_output_without_trailing_newline_is_exact(sandbox):
    assert sandbox.run("printf 'a\\nb'").output == "a\nb"
    assert sandbox.run("true").output == ""


@pytest.mark.parametrize("command", ["cat", "read x; echo got=$x", "python3 2>&1 || true", "head -1"])
def test_commands_reading_stdin_see_end_of_file(sandbox, command):
    result = sandbox.run(command, timeout=10)
    assert not result.timed_out
    assert sandbox.run("echo next").output == "next\n"


@pytest.mark.parametrize("command", ["echo 'unterminated", "if true; then", "}", "echo $'\\x27'; ((", "\x00echo nul"])
def test_malformed_commands_do_not_break_the_framing(sandbox, command):
    sandbox.run(command)
    assert sandbox.run("echo still-here").output == "still-here\n"


def test_timeout_interrupts_the_command_not_the_session(sandbox):
    sandbox.run("cd /etc")
    result = sandbox.run("sleep 1000", timeout=1)
    assert result.timed_out and not result.shell_restarted
    assert "timed out" in result.output
    assert sandbox.run("pwd").output == "/etc\n"  # same shell: state kept


def test_busy_builtin_loop_gets_a_new_shell(sandbox):
    result = sandbox.run("while :; do :; done", timeout=1)
    assert result.timed_out and result.shell_restarted and result.exit_code is None
    assert sandbox.run("echo ok").output == "ok\n"


@pytest.mark.parametrize("command", ["exit", "exit 3", "exec true", "kill -9 $$"])
def test_commands_that_end_the_shell_are_reported_and_survived(sandbox, command):
    sandbox.run("export MARK=1")
    result = sandbox.run(command)
    assert result.shell_restarted and result.exit_code is None
    assert "new shell" in result.output
    after = sandbox.run("echo alive:$MARK")
    assert after.output == "alive:\n" and not after.shell_restarted


def test_flood_is_capped_keeping_head_and_tail(sandbox):
    result = sandbox.run("seq 1 2000000", timeout=60)
    assert result.exit_code == 0 and result.output_truncated
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("1999999\n2000000\n")
    assert "bytes of output omitted" in result.output
    assert len(result.output.encode()) < 4096 + 100


def test_huge_flood_and_binary_output(sandbox):
    flood = sandbox.run("yes | head -c 100000000", timeout=60)
    assert flood.exit_code == 0 and flood.output_truncated
    binary = sandbox.run("head -c 1000000 /dev/urandom", timeout=60)
    assert binary.exit_code == 0 and binary.output_truncated
    assert isinstance(binary.output, str)
    assert sandbox.run("echo fine").output == "fine\n"


def test_ansi_c_quote_round_trips_through_bash(sandbox):
    text = "it's a \\ back\tslash $HOME `x` \"q\" é ✓\nline"
    assert sandbox.run(f"printf '%s' {ansi_c_quote(text)}").output == text


def test_capped_output_counts_and_joins():
    capped = CappedOutput(10)
    for chunk in [b"abc", b"defgh", b"ijklmnop", b"qrst"]:
        capped.append(chunk)
    assert capped.total == 20 and capped.truncated
    assert capped.text() == "abcde\n[... 10 bytes of output omitted ...]\npqrst"
    small = CappedOutput(10)
    small.append(b"12345678")
    assert not small.truncated and small.text() == "12345678"
    assert small.last(3) == b"678"
