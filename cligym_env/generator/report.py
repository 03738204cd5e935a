"""The generation report: yield, speed, disk, categories, shortcut share, pass-to-pass and rejection reasons.

Written as JSON (for tools), Markdown (for people) and a PNG category histogram.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import docker
from docker.errors import ImageNotFound

from cligym_env.generator.pipeline import Outcome
from cligym_env.tasks.task import CATEGORIES


@dataclass(frozen=True)
class Report:
    candidates: int
    accepted: int
    duplicates: int
    tasks_written: int
    wall_seconds: float
    disk_mb_per_task: float  # image bytes each accepted breakage adds over its gold image
    categories: dict[str, int]
    projects: dict[str, int]
    rejections: dict[str, int]
    tokens: int = 0  # LLM tokens spent (agentic mode)
    minutes_per_candidate: float = 0.0  # mean time from proposal (or operator draw) to verdict
    solved_by_project_reinstall: int = 0  # accepted breakages one reinstall of the project repairs
    solved_by_any_shortcut: int = 0  # ... that reinstalling the project or everything from the wheelhouse repairs
    with_pass_to_pass: int = 0  # accepted breakages that leave some tests passing
    fail_to_pass_per_task: float = 0.0
    pass_to_pass_per_task: float = 0.0

    def share(self, count: int) -> float:
        return count / self.accepted if self.accepted else 0.0

    @property
    def tokens_per_task(self) -> float:
        return self.tokens / self.accepted if self.accepted else float(self.tokens)

    @property
    def yield_rate(self) -> float:
        return self.accepted / self.candidates if self.candidates else 0.0

    @property
    def seconds_per_task(self) -> float:
        return self.wall_seconds / self.accepted if self.accepted else float("inf")

    @property
    def tasks_per_hour(self) -> float:
        return 3600 * self.accepted / self.wall_seconds if self.wall_seconds else 0.0


def build_report(outcomes: Sequence[Outcome], wall_seconds: float, client: docker.DockerClient | None = None,
                 gold_images: dict[str, str] | None = None) -> Report:
    accepted = [o for o in outcomes if o.status == "accepted"]
    sizes = [_added_bytes(client, o.image, (gold_images or {}).get(o.project, "")) for o in accepted] if client else []
    sizes = [size for size in sizes if size is not None]
    return Report(
        candidates=len(outcomes), accepted=len(accepted), duplicates=sum(o.status == "duplicate" for o in outcomes),
        tasks_written=sum(len(o.task_ids) for o in accepted), wall_seconds=wall_seconds,
        disk_mb_per_task=sum(sizes) / len(sizes) / 1e6 if sizes else 0.0,
        categories={c: n for c in CATEGORIES if (n := sum(o.category == c for o in accepted))},
        projects=dict(Counter(o.project for o in accepted)),
        rejections=dict(Counter(o.reason.split(":")[0] for o in outcomes if o.status == "rejected")),
        tokens=sum(o.tokens for o in outcomes),
        minutes_per_candidate=sum(o.seconds for o in outcomes) / len(outcomes) / 60 if outcomes else 0.0,
        solved_by_project_reinstall=sum("reinstall-project" in o.shortcuts for o in accepted),
        solved_by_any_shortcut=sum(bool(o.shortcuts) for o in accepted),
        with_pass_to_pass=sum(o.pass_to_pass > 0 for o in accepted),
        fail_to_pass_per_task=sum(o.fail_to_pass for o in accepted) / len(accepted) if accepted else 0.0,
        pass_to_pass_per_task=sum(o.pass_to_pass for o in accepted) / len(accepted) if accepted else 0.0)


def _added_bytes(client: docker.DockerClient, image: str, gold: str) -> int | None:
    try:
        return client.images.get(image).attrs["Size"] - client.images.get(gold).attrs["Size"]
    except (ImageNotFound, docker.errors.APIError):
        return None


def to_markdown(report: Report) -> str:
    lines = [
        "| measure | value |", "|---|---|",
        f"| candidates tried | {report.candidates} |",
        f"| valid breakages (tasks written, with hint variants) | {report.accepted} ({report.tasks_written}) |",
        f"| yield | {report.yield_rate:.0%} (paper: 41%) |",
        f"| duplicates dropped | {report.duplicates} |",
        f"| solved by one reinstall of the project | {report.solved_by_project_reinstall} "
        f"({report.share(report.solved_by_project_reinstall):.0%}; target at most 30%) |",
        f"| solved by either shortcut (the project, or every wheel, reinstalled) | "
        f"{report.solved_by_any_shortcut} ({report.share(report.solved_by_any_shortcut):.0%}) |",
        f"| with pass-to-pass tests left | {report.with_pass_to_pass} "
        f"({report.share(report.with_pass_to_pass):.0%}; target at least 50%) |",
        f"| fail-to-pass / pass-to-pass tests per task | {report.fail_to_pass_per_task:.1f} / "
        f"{report.pass_to_pass_per_task:.1f} (paper: 20.4 / 29.6) |",
        f"| wall time | {report.wall_seconds / 60:.1f} min |",
        f"| time per valid breakage | {report.seconds_per_task:.0f} s (paper: about 15 min) |",
        f"| valid breakages per hour | {report.tasks_per_hour:.0f} |",
        f"| disk per task over its gold image | {report.disk_mb_per_task:.2f} MB (paper: about 72 MB per task) |",
        f"| minutes per candidate (inversion run and validation) | {report.minutes_per_candidate:.2f} |",
        *([f"| LLM tokens (per valid breakage) | {report.tokens} ({report.tokens_per_task:,.0f}; paper: about "
           "1.4M per task) |"] if report.tokens else []),
        "", "| category | tasks |", "|---|---|", *[f"| {c} | {n} |" for c, n in report.categories.items()],
        "", "| project | tasks |", "|---|---|", *[f"| {p} | {n} |" for p, n in sorted(report.projects.items())],
        "", "| rejection reason | candidates |", "|---|---|",
        *[f"| {r} | {n} |" for r, n in sorted(report.rejections.items(), key=lambda item: -item[1])],
    ]
    return "\n".join(lines) + "\n"


def write_report(report: Report, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.json", folder / "report.md"]
    written[0].write_text(json.dumps({**report.__dict__, "yield": report.yield_rate,
                                      "seconds_per_task": report.seconds_per_task,
                                      "tasks_per_hour": report.tasks_per_hour,
                                      "tokens_per_task": report.tokens_per_task,
                                      "shortcut_share": report.share(report.solved_by_project_reinstall),
                                      "pass_to_pass_share": report.share(report.with_pass_to_pass)}, indent=2))
    written[1].write_text(to_markdown(report))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written  # the PNG needs the `report` extra
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.barh(list(CATEGORIES), [report.categories.get(c, 0) for c in CATEGORIES], color="#4c72b0")
    axis.set_xlabel("valid tasks (no-hint variants)")
    axis.set_title(f"CLI-Gym tasks by category ({report.accepted} total)")
    figure.tight_layout()
    figure.savefig(folder / "categories.png", dpi=100)
    plt.close(figure)
    return written + [folder / "categories.png"]
