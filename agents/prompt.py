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
"""

from __future__ import annotations

import re

from agents.policy import SUBMIT, Reply
from agents.trajectory import Turn
from cligym_env.spaces import trim

SYSTEM = f"""You are an expert Linux engineer fixing a broken environment from a terminal.
The user describes the problem. Each turn, think briefly, then reply with exactly one fenced block
```bash
<the command to run>
```
It runs in a persistent, non-interactive bash shell (the working directory and variables persist); you then see
its exit code and output. Do not use interactive programs (editors, pagers); write files with heredocs or sed.
When the problem is fixed, reply with the single word {SUBMIT} and nothing else: hidden tests then grade the
environment. You have a limited number of turns."""

FENCE = re.compile(r"```(?:bash|sh)[ \t]*\n(.*?)```", re.DOTALL)


def first_messages(instruction: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": instruction}]


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


def feedback(error: str, turns_left: int) -> str:
    return (f"Nothing ran: {error}. Reply with exactly one ```bash block holding the command to run, "
            f"or with the single word {SUBMIT} when the problem is fixed. {turns_left} turn(s) left.")


def observation(output: str, exit_code: int | None, timed_out: bool, limit: int) -> str:
    status = "timed out" if timed_out else "shell restarted" if exit_code is None else f"exit code {exit_code}"
    return f"{status}\n{trim(output, limit) if output else '(no output)'}"
