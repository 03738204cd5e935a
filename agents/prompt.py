"""The conversation every policy takes part in (Terminus style), shared so any trajectory is SFT data.

Messages, in order:

1. system: `SYSTEM` (the rules below).
2. user: the task's issue text.
3. assistant: a reply. It must be exactly one of
   - some optional reasoning, then exactly one fenced block opened with ```bash (or ```sh) holding the
     command(s) to run; the block's text goes to a persistent bash shell as one command, or
   - the single word `submit` (alone in the reply, or alone in the block): the environment is fixed, grade it.
4. user: the command's result, `exit code N` (or `timed out`) and the output, long outputs trimmed to their head
   and tail around a `[... N characters omitted ...]` marker; or, after a malformed reply (no block, several
   blocks, an empty block), feedback saying what was wrong and how many turns are left. Nothing runs then, but the
   reply still uses a turn of the episode's budget.

3 and 4 repeat until `submit`, the turn budget or the environment's step limit ends the episode.

With `actions="tools"` (for models trained on tool calls) the system prompt is `SYSTEM_TOOLS`, the tools `TOOLS`
(`bash(command)` and `submit()`, OpenAI-style) go to the chat template or the API, and a well-formed reply makes
exactly one tool call; the result comes back as a `tool` message answering that call (feedback on a reply without
a call comes as a user message, and every call of a reply with several is answered with the feedback).
"""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from agents.policy import SUBMIT, Reply
from agents.trajectory import Turn
from cligym_env.error import UsageError
from cligym_env.spaces import trim

ACTIONS = ("fenced", "tools")  # a fenced ```bash block per reply, or OpenAI-style tool calls

SYSTEM = f"""You are an expert Linux engineer fixing a broken environment from a terminal.
The user describes the problem. Each turn, think briefly, then reply with exactly one fenced block
```bash
<the command to run>
```
It runs in a persistent, non-interactive bash shell (the working directory and variables persist); you then see
its exit code and output. Do not use interactive programs (editors, pagers); write files with heredocs or sed.
When the problem is fixed, reply with the single word {SUBMIT} and nothing else: hidden tests then grade the
environment. You have a limited number of turns."""

SYSTEM_TOOLS = f"""You are an expert Linux engineer fixing a broken environment from a terminal.
The user describes the problem. Each turn, think briefly, then call exactly one tool:
- bash(command): runs the command in a persistent, non-interactive bash shell (the working directory and
  variables persist) and returns its exit code and output. Do not use interactive programs (editors, pagers);
  write files with heredocs or sed.
- {SUBMIT}(): when the problem is fixed; hidden tests then grade the environment.
You have a limited number of turns."""

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "bash",
        "description": "Run a command in a persistent, non-interactive bash shell; returns its exit code and output.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string", "description":
                       "The command(s) to run, as one bash script."}}, "required": ["command"]}}},
    {"type": "function", "function": {
        "name": SUBMIT,
        "description": "Declare the problem fixed: hidden tests then grade the environment and the episode ends.",
        "parameters": {"type": "object", "properties": {}}}},
]

FENCE = re.compile(r"```(?:bash|sh)[ \t]*\n(.*?)```", re.DOTALL)


def check_actions(actions: str) -> str:
    if actions not in ACTIONS:
        raise UsageError(f"actions={actions!r} is not an action format; use one of {', '.join(ACTIONS)}")
    return actions


def tools_for(actions: str) -> list[dict[str, Any]] | None:
    """The tool schemas a policy with this action format is offered (None for fenced blocks)."""
    return [dict(tool) for tool in TOOLS] if check_actions(actions) == "tools" else None


def first_messages(instruction: str, actions: str = "fenced") -> list[dict[str, Any]]:
    system = SYSTEM_TOOLS if check_actions(actions) == "tools" else SYSTEM
    return [{"role": "system", "content": system}, {"role": "user", "content": instruction}]


def scripted_reply(command: str) -> Reply:
    """A scripted policy's reply for `command`, well formed by construction."""
    text = SUBMIT if command.strip() == SUBMIT else f"```bash\n{command.strip()}\n```"
    return Reply(text, Turn(command))


def parse_reply(text: str, finish_reason: str = "stop") -> tuple[str | None, str]:
    """(command or `submit`, "") from a well-formed reply, else (None, what was wrong with it)."""
    if text.strip() == SUBMIT:
        return SUBMIT, ""
    blocks = FENCE.findall(text)
    if len(blocks) == 1 and blocks[0].strip():
        return blocks[0].strip(), ""
    if len(blocks) > 1:
        return None, f"your reply had {len(blocks)} ```bash blocks; send exactly one"
    if blocks:
        return None, "your reply's ```bash block was empty"
    cut = " (it was cut off at the token limit: keep replies short)" if finish_reason == "length" else ""
    return None, f"your reply had no ```bash block{cut}"


def parse_tool_calls(calls: Sequence[dict[str, Any]], finish_reason: str = "stop") -> tuple[str | None, str]:
    """(command or `submit`, "") from exactly one well-formed `bash` or `submit` call, else (None, what was wrong)."""
    if not calls:
        cut = " (it was cut off at the token limit: keep replies short)" if finish_reason == "length" else ""
        return None, f"your reply called no tool{cut}"
    if len(calls) > 1:
        return None, f"your reply made {len(calls)} tool calls; make exactly one"
    function = calls[0].get("function") or {}
    name, arguments = function.get("name"), function.get("arguments") or {}
    if name == SUBMIT:
        return SUBMIT, ""
    if name != "bash":
        return None, f"there is no tool {name!r}; call bash or {SUBMIT}"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return None, "the bash call's arguments were not a JSON object"
    command = arguments.get("command") if isinstance(arguments, dict) else None
    if not isinstance(command, str) or not command.strip():
        return None, 'the bash call needs a non-empty string argument "command"'
    return command.strip(), ""


def answer(reply: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The message(s) that answer an assistant message: one `tool` message per call it made, else a user message."""
    calls = reply.get("tool_calls") or []
    if not calls:
        return [{"role": "user", "content": text}]
    return [{"role": "tool", "tool_call_id": call.get("id") or "", "content": text} for call in calls]


def feedback(error: str, turns_left: int, tools: Sequence[dict[str, Any]] | None = None) -> str:
    if tools:
        return (f"Nothing ran: {error}. Call exactly one tool: bash with the command to run, or {SUBMIT} when "
                f"the problem is fixed. {turns_left} turn(s) left.")
    return (f"Nothing ran: {error}. Reply with exactly one ```bash block holding the command to run, "
            f"or with the single word {SUBMIT} when the problem is fixed. {turns_left} turn(s) left.")


def observation(output: str, exit_code: int | None, timed_out: bool, limit: int) -> str:
    status = "timed out" if timed_out else "shell restarted" if exit_code is None else f"exit code {exit_code}"
    return f"{status}\n{trim(output, limit) if output else '(no output)'}"
