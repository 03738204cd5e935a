"""Step 3 of agentic inversion: the LLM writes the issue from the failing tests' real output.

Styles follow the paper: strong, weak or balanced guidance, each with and without a hint. A text that is too
short or leaks the fix (quotes a line of the repair script) is replaced by the rule-based writer.
"""

from __future__ import annotations

import random
from typing import Sequence

from cligym_env.generator.issue import write_issue
from cligym_env.generator.validate import Validated
from cligym_env.llm import LLMClient, Message, SamplingSettings

STYLES = {
    "strong": "Describe the symptoms precisely: the failing command, the exact error, which features are affected.",
    "weak": "Describe the symptoms vaguely, like a hurried user: what stopped working, one error line at most.",
    "balanced": "Describe what fails and quote the key error lines, without guessing at causes.",
}


def task_seed(validated: Validated) -> str:
    """A seed of the candidate's own (its target and failing tests), so two tasks of one run read differently."""
    return f"{validated.breakage.target}|{len(validated.tests.fail_to_pass)}|{validated.tests.fail_to_pass[:1]}"


def issue_messages(project: str, validated: Validated, style: str, hint: bool) -> list[Message]:
    evidence = write_issue(project, validated, hint=False, seed=task_seed(validated))  # the real output, trimmed
    ask = (f"Write a GitHub-style issue (a title line starting with '# ', then the body) reporting that the {project} "
           f"environment on this machine is broken. {STYLES[style]} Use only the evidence below. Never say how to fix "
           "it and never mention tests being hidden or graded.")
    if hint:
        ask += " End with one line 'Hint: ...' that points at the area of the problem without giving the fix."
    return [{"role": "user", "content": f"{ask}\n\nEvidence:\n{evidence}"}]


def write_issues(llm: LLMClient, project: str, validated: Sequence[Validated], rng: random.Random,
                 sampling: SamplingSettings) -> list[tuple[str, str]]:
    """(no-hint, hint) issue texts per validated candidate, from one batched LLM call."""
    styles = [rng.choice(sorted(STYLES)) for _ in validated]
    conversations = [issue_messages(project, v, style, hint) for v, style in zip(validated, styles)
                     for hint in (False, True)]
    texts = [c.text for c in llm.chat(conversations, sampling)] if conversations else []
    issues = []
    for index, candidate in enumerate(validated):
        pair = []
        for offset, hint in enumerate((False, True)):
            text = texts[2 * index + offset].strip()
            usable = len(text) >= 80 and not leaks_fix(text, candidate.breakage.solution)
            pair.append(text + "\n" if usable else write_issue(project, candidate, hint=hint,
                                                                 seed=task_seed(candidate)))
        issues.append((pair[0], pair[1]))
    return issues


def leaks_fix(text: str, solution: str) -> bool:
    """True when the text quotes a substantive line of the repair script."""
    lines = [line.strip() for line in solution.splitlines()]
    return any(len(line) >= 8 and not line.startswith("#") and line in text for line in lines)
