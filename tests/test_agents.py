"""Unit tests without Docker or a model: reply parsing, context fitting, curation, pass@k and policy specs."""

from __future__ import annotations

import json
import math
from itertools import combinations

import pytest

from agents.curate import curate, shortcut
from agents.evaluate import EvalConfig, evaluate, pass_at_k, wilson
from agents.llm_policy import DROPPED_NOTE, LLMPolicy
from agents.policies import PolicySpec, make_policy
from agents.prompt import first_messages, observation, parse_reply
from agents.trajectory import Step, Trajectory
from cligym_env.llm import Completion, SamplingSettings, Usage
from cligym_env.spaces import trim


@pytest.mark.parametrize("reply, expected", [
    ("submit", ("submit", "")),
    ("  submit\n", ("submit", "")),
    ("Look first.\n```bash\nls -la /app\n```\nthen decide", ("ls -la /app", "")),
    ("```sh\ncd /app && make\n```", ("cd /app && make", "")),
    ("```bash\nsubmit\n```", ("submit", "")),
    ("I will run ls", (None, "your reply had no ```bash block")),
    ("```bash\nls\n```\n```bash\npwd\n```", (None, "your reply had 2 ```bash blocks; send exactly one")),
    ("```bash\n  \n```", (None, "your reply's ```bash block was empty")),
    ("```python\nprint(1)\n```", (None, "your reply had no ```bash block")),
])
def test_parse_reply(reply, expected):
    assert parse_reply(reply) == expected


def test_a_reply_cut_at_the_token_limit_is_told_so():
    command, error = parse_reply("```bash\nfind / -name '*.py' | xargs grep", "length")
    assert command is None and "cut off at the token limit" in error


def test_long_outputs_keep_head_and_tail():
    text = "".join(f"line {i}\n" for i in range(1000))
    trimmed = trim(text, 200)
    assert trimmed.startswith("line 0\n") and trimmed.endswith("line 999\n") and len(trimmed) < 260
    assert f"[... {len(text) - 200} characters omitted ...]" in trimmed
    assert observation("", 0, False, 100) == "exit code 0\n(no output)"
    assert observation("x", None, True, 100) == "timed out\nx"


class FakeClient:
    """Echoes a fixed reply; counts one token per character so fitting is easy to check."""

    model = "fake"

    def __init__(self, max_model_len: int) -> None:
        self.max_model_len, self.usage, self.batches = max_model_len, Usage(), []

    def prompt_ids(self, messages):
        return [0] * sum(len(m["content"]) for m in messages)

    def chat(self, conversations, sampling):
        self.batches.append((len(conversations), sampling.seed))
        return [Completion("```bash\nls\n```", len(self.prompt_ids(c)), 3, "stop") for c in conversations]


def conversation(turns: int, output: str = "o" * 100) -> list[dict[str, str]]:
    messages = first_messages("fix the machine")
    for i in range(turns):
        messages += [{"role": "assistant", "content": f"```bash\ncmd{i}\n```"}, {"role": "user", "content": output}]
    return messages


def test_fit_drops_oldest_turns_then_trims_but_keeps_the_issue():
    policy = LLMPolicy(FakeClient(max_model_len=1200), SamplingSettings(max_tokens=100))
    assert policy.max_prompt_tokens == 1100
    messages = conversation(8)
    fitted, dropped = policy.fit(messages)
    assert policy.count(fitted) <= 1100 < policy.count(fitted[:2] + messages[dropped:])  # no more dropped than needed
    assert fitted[0] == messages[0] and fitted[1]["content"] == messages[1]["content"] + DROPPED_NOTE
    assert fitted[2:] == messages[2 + dropped:]  # the newest turns, untouched
    huge, dropped = policy.fit(conversation(3, output="x" * 5000))
    assert policy.count(huge) <= 1100 and dropped == 4 and "characters omitted" in huge[-1]["content"]
    assert policy.fit(conversation(1)) == (conversation(1), 0)


def test_one_chat_call_per_act_with_distinct_seeds():
    client = FakeClient(max_model_len=4000)
    policy = LLMPolicy(client, SamplingSettings(max_tokens=10, seed=7), name="vllm")
    trajectories = [Trajectory(f"t{i}", "x", messages=conversation(1)) for i in range(3)]
    replies = policy.act(trajectories)
    policy.act(trajectories[:2])
    assert policy.calls == 2 and client.batches == [(3, 7), (2, 10)]  # seeds 7..9, then 10..11: none shared
    assert [r.turn.command for r in replies] == ["ls"] * 3 and replies[0].turn.prompt_tokens > 0


def test_shortcuts():
    for command in ["cat /cligym/tests/test_x.py", "ls $CLIGYM_TESTS", "tail /var/log/dpkg.log",
                    "zcat /var/log/apt/history.log.1.gz", "grep -r numpy /root/.cache/pip", "pip cache list",
                    "git log -p", "cd /app && git -C /app reflog", "git --no-pager show HEAD~1",
                    "cat .git/logs/HEAD", "git whatchanged"]:
        assert shortcut(command), command
    for command in ["git status", "git diff", "pip install --no-cache-dir x", "ls /var/log", "cat /app/log.txt",
                    "python -m pytest /app/tests", "apt-get install -y python3"]:
        assert shortcut(command) is None, command
    assert shortcut("cat /srv/grading/t.py", tests_dirs=["/srv/grading"]) == "reads the grading tests"


def episode(task_id: str, commands: list[str], resolved: bool = True) -> Trajectory:
    return Trajectory(task_id, "x", steps=[Step(c, "", 0) for c in commands], reward=float(resolved),
                      resolved=resolved)


def test_curate_keeps_short_clean_distinct_successes():
    kept_a, kept_b = episode("a", ["chmod +x /app/bin/x"]), episode("b", ["chmod +x /app/bin/x"])
    trajectories = [kept_a, episode("a", ["ls"], resolved=False), episode("a", ["ls"] * 20), kept_b,
                    episode("a", ["tail /var/log/dpkg.log", "fix"]), episode("a", ["git log", "fix"]),
                    episode("a", ["cat /cligym/tests/t.py"]), episode("a", ["chmod +x /app/bin/x"]),
                    episode("a", ["ls"] * 19)]
    kept, dropped = curate(trajectories, max_steps=20)
    assert kept == [kept_a, kept_b, trajectories[-1]]
    assert dropped == {"not resolved": 1, "20 or more steps": 1, "duplicate": 1,
                       "shortcut: reads package-manager logs": 1, "shortcut: reads VCS history": 1,
                       "shortcut: reads the grading tests": 1}


def test_pass_at_k_matches_brute_force():
    for n, c, k in [(5, 0, 1), (5, 2, 1), (5, 2, 3), (10, 3, 5), (4, 4, 2), (6, 1, 6)]:
        draws = list(combinations([True] * c + [False] * (n - c), k))
        assert math.isclose(pass_at_k(n, c, k), sum(any(d) for d in draws) / len(draws))
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_evaluate_split_with_intervals():
    runs = {"a": [True, True, False, False], "b": [False] * 4, "c": [True] * 4, "other": [True] * 4}
    trajectories = [episode(task, [], resolved=r) for task, results in runs.items() for r in results]
    report = evaluate(trajectories, EvalConfig(ks=(1, 2)), task_ids=["a", "b", "c", "d"])
    assert [s.task_id for s in report.tasks] == ["a", "b", "c"] and report.missing == ["d"]
    a = report.tasks[0]
    assert (a.n, a.resolved, a.pass_at) == (4, 2, {1: 0.5, 2: pytest.approx(5 / 6)})
    assert a.wilson == pytest.approx(wilson(2, 4)) and 0.15 < a.wilson[0] < 0.5 < a.wilson[1] < 0.85
    mean, low, high = report.overall[1]
    assert mean == pytest.approx(0.5) and 0.0 <= low < mean < high <= 1.0
    assert report.overall[2][0] == pytest.approx((1 - 1 / 6 + 0 + 1) / 3)


def test_infrastructure_failures_leave_pass_at_k_and_tampering_is_counted_and_never_kept():
    infra = episode("a", ["ls"], resolved=False)
    infra.error = {"kind": "container-died", "message": "killed from outside", "policy_caused": False}
    own = episode("a", ["kill 1"], resolved=False)
    own.error = {"kind": "container-died", "message": "exited", "policy_caused": True}
    forged = episode("a", ["echo > /app/conftest.py"], resolved=False)
    forged.tamper = ["/app/conftest.py was changed to content that is in no image or wheel of this task"]
    report = evaluate([infra, own, forged, episode("a", ["fix"])])
    assert report.infrastructure_failures == 1 and report.tampered == 1
    assert (report.tasks[0].n, report.tasks[0].resolved) == (3, 1)  # the policy's own crash counts as a failure
    forged_but_resolved = episode("b", ["x"])
    forged_but_resolved.tamper = ["found"]  # graded with audit="report": resolved by tests, still never kept
    kept, dropped = curate([forged_but_resolved])
    assert kept == [] and dropped == {"tampered with grading": 1}


def test_trajectories_of_schema_2_are_still_read():
    old = json.loads(episode("a", ["ls"]).to_json())
    for key in ("tamper", "error"):
        del old[key]
    old["schema_version"] = 2
    read = Trajectory.from_json(json.dumps(old))
    assert read.tamper == [] and read.error is None and read.resolved


def test_policy_specs_fail_clearly(example_registry):
    assert make_policy(PolicySpec("oracle"), example_registry).name == "oracle"
    assert make_policy(PolicySpec("random", seed=4), example_registry).seed == 4
    with pytest.raises(ValueError, match="unknown policy 'gpt'"):
        make_policy(PolicySpec("gpt"), example_registry)
    with pytest.raises(ValueError, match="needs --model with an http"):
        make_policy(PolicySpec("openai", model="/models/x"), example_registry)
    with pytest.raises(ValueError, match="needs --model with a local model folder"):
        make_policy(PolicySpec("vllm", model="http://host:8000"), example_registry)
