"""Step 1 of agentic inversion: an LLM proposes one realistic way the gold environment could have broken.

The prompt carries sampled intervention directions, a sample of passing tests, and the titles already
generated for this environment (a memory pool, for diversity). The reply must be one JSON object that
matches `PROPOSAL_SCHEMA`; anything else is an invalid proposal (retried once with the error).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Sequence

import jsonschema

from cligym_env.generator.types import GoldEnvironment
from cligym_env.llm import Message
from cligym_env.tasks.task import CATEGORIES
from cligym_env.error import ProposalError

DIRECTIONS = {
    "file-system": ["a module file deleted or truncated", "a missing execute bit", "a directory replaced by a file",
                    "a corrupted cache or bytecode file"],
    "infrastructure": ["a tampered configuration file", "a broken interpreter start-up hook (.pth, sitecustomize)",
                       "a broken shebang or console script", "a wrong library search path"],
    "dependencies-runtime": ["a dependency uninstalled", "a dependency downgraded", "broken package metadata",
                             "a module shadowed on sys.path"],
    "network-security": ["name resolution configuration damaged", "the certificate store damaged",
                         "service or protocol databases damaged"],
    "source-logic": ["an installed module's logic subtly changed", "a constant changed in an installed module"],
    "compatibility": ["an incompatible version of a dependency", "a stale bytecode file from other source",
                      "a locale or encoding setting broken"],
    "concurrency": ["a threading or multiprocessing building block broken", "a stale lock or pid file",
                    "a resource limit set too low at start-up"],
    "other": ["an environment quirk that breaks test collection", "a broken standard-library extension module"],
}

PROPOSAL_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "category", "target_tests", "description", "expected_failure", "recovery_strategy"],
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 120},
        "category": {"enum": list(CATEGORIES)},
        "target_tests": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 50},
        "description": {"type": "string", "minLength": 10},
        "expected_failure": {"type": "string", "minLength": 5},
        "recovery_strategy": {"type": "string", "minLength": 5},
    },
}


@dataclass(frozen=True)
class Proposal:
    name: str
    category: str
    target_tests: tuple[str, ...]
    description: str
    expected_failure: str
    recovery_strategy: str


def proposal_messages(gold: GoldEnvironment, rng: random.Random, memory: Sequence[str],
                      tests_shown: int = 15) -> list[Message]:
    categories = rng.sample(sorted(DIRECTIONS), k=rng.randint(1, 3))
    directions = [f"{category}: {rng.choice(DIRECTIONS[category])}" for category in categories]
    tests = rng.sample(list(gold.passing), k=min(tests_shown, len(gold.passing)))
    probe = gold.probe
    system = (
        "You design realistic breakages of healthy software environments, for training agents that repair them. "
        "Answer with one JSON object and nothing else, with the keys: name (a short title), category (one of "
        f"{', '.join(CATEGORIES)}), target_tests (test ids from the list given), description (what to change in the "
        "environment, concretely: files, packages, settings; never the project's tests), expected_failure (what the "
        "tests will show), recovery_strategy (how a person repairs it offline from inside the machine).")
    user = "\n".join([
        f"Environment: the Python project {gold.project} {gold.version}, installed in {probe.python} "
        f"(Python {probe.python_version}); wheels of every installed package are kept in {probe.wheelhouse}; "
        f"Debian package archives in {probe.apt_archives}. Its tests pass.",
        "Directions to explore: " + "; ".join(directions) + ".",
        "Some passing tests: " + ", ".join(tests) + ".",
        "Titles already used (propose something different): " + ("; ".join(memory[-20:]) if memory else "none") + ".",
    ])
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_proposal(text: str, gold: GoldEnvironment) -> Proposal:
    match = re.search(r"\{.*\}", text, flags=re.S)
    if not match:
        raise ProposalError("the reply holds no JSON object; answer with one JSON object only")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as error:
        raise ProposalError(f"the JSON does not parse: {error}") from None
    try:
        jsonschema.validate(data, PROPOSAL_SCHEMA)
    except jsonschema.ValidationError as error:
        raise ProposalError(f"the JSON does not match the schema: {error.message}") from None
    known = [test for test in data["target_tests"] if test in set(gold.passing)]
    if not known:
        raise ProposalError("none of target_tests is a passing test of this environment; pick ids from the list")
    return Proposal(data["name"], data["category"], tuple(known), data["description"], data["expected_failure"],
                    data["recovery_strategy"])
