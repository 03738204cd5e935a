"""Every error cligym raises on purpose, in one place (like `gymnasium.error`).

Two branches say who must act: a `UsageError` is the user's to fix (the CLI prints its one line and exits 2),
an `InfrastructureError` is the machine's (Docker, the host, a registry; never blamed on a policy). Anything
else that escapes is a bug of ours. Messages name the file, field or value and, where there is one, the fix.
"""

from __future__ import annotations

from typing import Any


class CLIGymError(Exception):
    """Root of every error cligym raises on purpose."""


class UsageError(CLIGymError):
    """The user's mistake: an unknown id, a bad value or option, a malformed file."""


class InfrastructureError(CLIGymError):
    """Docker, the host or a registry failed: nobody's input was wrong, and no policy is to blame."""


class ConfigError(UsageError, ValueError):
    """A setting (a command-line option, a keyword of `gym.make`, a config field) has a value that cannot work."""


# runtime ---------------------------------------------------------------------------------------------------------
class DockerUnavailableError(InfrastructureError):
    """The Docker daemon cannot be reached."""


class ShellError(InfrastructureError):
    """The shell could not be started at all (the container is gone or has no usable bash)."""


class ChangesUnlistable(CLIGymError):
    """What a container changed cannot be listed in full (folders nested past any repair's): the policy's doing."""


# images ----------------------------------------------------------------------------------------------------------
class BootstrapError(InfrastructureError):
    """The base images could not be made (debootstrap, docker import)."""


class ImageBuildError(CLIGymError):
    """`docker build` failed; the message carries the tail of the build log."""


# tasks -----------------------------------------------------------------------------------------------------------
class TaskError(UsageError, ValueError):
    """A task (or task folder) is malformed; the message names the file and field."""


class UnknownTaskError(TaskError, KeyError):
    """No task with this id; both a `TaskError` and a `KeyError`."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TaskExistsError(TaskError, FileExistsError):
    """A task folder with this id is already there and overwrite was not asked for."""


# formats ---------------------------------------------------------------------------------------------------------
class TaskFormatError(TaskError):
    """A foreign task (Harbor or Terminal-Bench folder, dataset row) is malformed; the message names file and field."""


class UnmappableImageError(UsageError):
    """An imported Dockerfile starts FROM an image this host lacks and cligym has no local stand-in for."""


class ExportError(UsageError):
    """A task cannot be written in the asked format; the message says why and what would work."""


# llm -------------------------------------------------------------------------------------------------------------
class LLMError(CLIGymError):
    """A model could not be loaded or reached; the message names the path or URL."""


# generator -------------------------------------------------------------------------------------------------------
class GoldError(CLIGymError):
    """A gold environment could not be made."""


class GoldRejected(GoldError):
    """The project was built but its suite is unfit (too few passing tests, low pass rate, too slow)."""


class SourceError(GoldError, UsageError):
    """`--source PATH` (or a `tests = ...` entry) names nothing usable: no such folder, not a readable archive."""


class NoTestsFound(GoldRejected, UsageError):
    """The project's source ships no tests that pytest could run; the message says where it looked and what to do."""


class FixturesMissing(GoldRejected, UsageError):
    """The tests open files the source does not ship (FileNotFoundError in the gold run): a checkout is needed."""


class UnsupportedRunner(GoldRejected, UsageError):
    """The tests are there but pytest collects none of them (a runner of the project's own)."""


class ProjectNotFound(GoldError, UsageError, LookupError):
    """PyPI has no such project, or no source distribution of the asked version."""


class WheelhouseError(GoldError):
    """pip could not gather the wheels; the message carries pip's own error."""


class ProbeError(GoldError):
    """The probe script failed inside the gold container; the message carries its output."""


class ProposalError(CLIGymError, ValueError):
    """An LLM's reply is not a valid proposal; the message is fed back to the model once."""


class Rejected(CLIGymError):
    """A candidate breakage failed a check; `reason` is a short key for the report, the message says more."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# grading ---------------------------------------------------------------------------------------------------------
class HarnessError(InfrastructureError):
    """The grading harness could not be prepared (no wheels, image build failed)."""


class ReportError(CLIGymError, ValueError):
    """A test report is not JUnit XML."""


class AuditIncomplete(CLIGymError):
    """The audit could not read what the policy left whole, or in time: that is a finding."""


class GradingFailure(CLIGymError):
    """Raised inside the grader and turned into a `grading.Failure` (kept on `.failure`) by `grade`."""

    def __init__(self, failure: Any) -> None:
        super().__init__(failure.message)
        self.failure = failure


# corpus ----------------------------------------------------------------------------------------------------------
class PackError(UsageError):
    """A task pack is missing or malformed; the message names the pack, file and field."""


class PackIntegrityError(PackError):
    """A pinned artifact (sdist, wheel) or a rebuilt recipe does not match the hash the pack records: refused."""


class PackFilterError(PackError, ValueError):
    """An install filter (project, category, split, limit) names a value the pack does not have."""


# trajectories (agents) -------------------------------------------------------------------------------------------
class TrajectoryError(UsageError, ValueError):
    """A trajectory file or line does not follow the trajectory schema; the message names the line and field."""
