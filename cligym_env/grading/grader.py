"""Grade the filesystem a policy left, never its processes: snapshot, fresh container, audit, trusted runner.

1. The policy's container is frozen, its changes listed (`docker diff`) and committed to a snapshot image.
2. The snapshot runs as a new grading container (network off, same limits, `/` as working directory, a static
   busybox from the harness volume as its only long-lived process): no process of the policy's is alive there.
3. The audit (`audit.py`) checks every changed file that could run during the tests.
4. The tests folder is deleted and written anew (nothing planted survives, bytecode caches included; a link
   among its parents is the policy's failure); the report and the runner's summary go to folders made fresh too
   (before the audit, which writes its lists there).
5. `pytest_runner.py` runs the tests with the environment's interpreter (`-I -B`, pytest from the read-only
   harness, no plugin auto-loading, a fixed environment); legacy tasks with a shell `command` run it instead.
6. The report is size-checked before it is read, and pytest's exit status must agree with it.
Both the grading container and the snapshot are removed whatever happens. A failure after the audit found
tampering is the policy's, whatever failed (else breaking grading would take a tampered episode out of pass@k).
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import shlex
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Sequence

import docker
from docker.errors import DockerException, NotFound

from cligym_env.grading.audit import MAX_AUDITED, AuditIncomplete, audit
from cligym_env.grading.external import RUNNERS as EXTERNAL_RUNNERS, run_external
from cligym_env.grading.harness import Mount, harness_volume
from cligym_env.grading.junit import ReportError, TestResult, parse_junit_results
from cligym_env.runtime.execute import run_argv
from cligym_env.runtime.sandbox import SNAPSHOT_LABEL, Sandbox, container_settings, tar_files
from cligym_env.tasks.task import Tests
from cligym_env.error import ChangesUnlistable, GradingFailure

log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 16 << 20


@dataclass(frozen=True)
class Failure:
    """Why an episode could not be graded; `policy_caused` separates the policy's doing from the infrastructure's."""

    kind: str  # container-died, disk-limit, grading (the final file system blocks it), grading-timeout, report,
    #            infrastructure (Docker or the host failed: not the policy's doing)
    message: str
    policy_caused: bool

    def as_info(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "policy_caused": self.policy_caused}


@dataclass(frozen=True)
class TestRun:
    results: dict[str, TestResult]  # every test in the report
    output: str  # the runner's output (capped)
    error: str = ""  # why no (complete) report could be read, if so
    exit_code: int | None = None
    disagreement: str = ""  # the runner's exit status contradicts its report

    @property
    def outcomes(self) -> dict[str, str]:
        return {test: result.outcome for test, result in self.results.items()}


@dataclass(frozen=True)
class Grade:
    reward: float
    resolved: bool
    tests: dict[str, str] = field(default_factory=dict)  # selected test id -> outcome ("missing" if absent)
    run: TestRun | None = None
    tamper: tuple[str, ...] = ()  # audit findings; with enforcement on they force reward 0
    failure: Failure | None = None  # set when grading could not be done; reward is then 0


def run_tests(sandbox: Sandbox, tests: Tests) -> TestRun:
    """The tests' outcomes on a snapshot of `sandbox` (left running), for generation and validation."""
    with _Snapshot(sandbox) as snapshot, _GradingBox(sandbox, snapshot.image) as box:
        box.prepare(tests)
        return box.run(tests)


def run_tests_on_image(client: docker.DockerClient, image: str, tests: Tests, *, task_id: str = "") -> TestRun:
    """The tests' outcomes in a fresh grading container of `image` itself: nothing ran there before, so there is
    no snapshot to take (what a no-op episode is graded on, two containers and a commit cheaper)."""
    origin = Sandbox(image, task_id=task_id, client=client)  # never started: its settings and fallback image only
    with _GradingBox(origin, image) as box:
        box.prepare(tests)
        return box.run(tests)


def discover_plugins(sandbox: Sandbox, tests: Tests) -> tuple[str, ...]:
    """The pytest plugin modules the (trusted, gold) environment installs, for `Tests.plugins`."""
    with _Snapshot(sandbox) as snapshot, _GradingBox(sandbox, snapshot.image) as box:
        box.prepare(tests)
        box.run(replace(tests, plugins=("?",)))
        found = _json(box._file(box.mount.summary, 1 << 20) or b"{}").get("available_plugins", [])
    return tuple(sorted(str(plugin) for plugin in found))


def grade(sandbox: Sandbox, tests: Tests, *, references: Sequence[str] = (), partial_credit: bool = False,
          enforce: bool = True) -> Grade:
    """Reward 1.0 iff every fail-to-pass and pass-to-pass test passes and the audit is clean.

    `references` are the images whose content is trusted besides the sandbox's own (the task image's FROM);
    `enforce=False` lists tamper findings without zeroing the reward (for research on reward hacking)."""
    tamper: list[str] = []
    try:
        with _Snapshot(sandbox) as snapshot, _GradingBox(sandbox, snapshot.image) as box:
            box.prepare(tests)
            tamper = box.audit(snapshot.changes, [sandbox.image, *references], tests)
            run = box.run(tests)
    except GradingFailure as error:
        return Grade(0.0, False, {t: "missing" for t in tests.selected}, tamper=tuple(tamper), failure=error.failure)
    except (DockerException, OSError, TimeoutError) as error:
        # Whatever failed after the audit found tampering, the episode is the policy's (else a policy that breaks
        # grading once it has tampered would take its episode out of pass@k, and its findings with it)
        failure = Failure("infrastructure", f"grading failed in Docker: {error}", policy_caused=False)
        if tamper:
            failure = Failure("grading", f"grading failed after the audit found tampering ({tamper[0]}): {error}",
                              policy_caused=True)
        return Grade(0.0, False, {t: "missing" for t in tests.selected}, tamper=tuple(tamper), failure=failure)
    tamper = (*tamper, *([run.disagreement] if run.disagreement else []))
    outcomes = run.outcomes
    selected = {test: outcomes.get(test, "missing") for test in tests.selected}
    passing = sum(outcome == "passed" for outcome in selected.values())
    resolved = bool(selected) and passing == len(selected) and not (enforce and tamper)
    if enforce and tamper:
        reward = 0.0
    else:
        reward = 1.0 if bool(selected) and passing == len(selected) else (
            passing / len(selected) if partial_credit and selected else 0.0)
    return Grade(reward, resolved, selected, run, tuple(tamper))


class _Snapshot:
    """The sandbox's filesystem frozen into an image, with the list of what the policy changed."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.image = ""
        self.changes: list[tuple[str, int]] = []

    def __enter__(self) -> "_Snapshot":
        container = self.sandbox.container
        assert container is not None, "the sandbox was never started"
        paused = _try(container.pause)  # frozen, so the diff and the commit see the same files
        try:
            try:
                self.changes = self.sandbox.changes()
            except ChangesUnlistable as error:
                raise GradingFailure(Failure("grading", f"the changes cannot be listed: {error}",
                                             policy_caused=True)) from None
            if len(self.changes) > MAX_AUDITED:  # before the commit, which that many files could make time out
                raise GradingFailure(Failure("grading", f"{len(self.changes)} files changed; more than {MAX_AUDITED} "
                                             "cannot be audited", policy_caused=True))
            labels = {SNAPSHOT_LABEL: "1", "cligym.owner": container.labels.get("cligym.owner", "")}
            self.image = container.commit(repository="cligym-snapshot", tag=secrets.token_hex(6),
                                          pause=False, conf={"Labels": labels}).id
        finally:
            if paused:
                _try(container.unpause)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.image:
            _try(lambda: self.sandbox.client.images.remove(self.image, force=True))


class _GradingBox:
    """A fresh container of the snapshot in which only the harness and the tests run."""

    def __init__(self, sandbox: Sandbox, image: str) -> None:
        self.client, self.sandbox, self.image = sandbox.client, sandbox, image
        self.harness = harness_volume(self.client)
        self.mount = Mount.fresh()
        self.container = None

    def __enter__(self) -> "_GradingBox":
        try:
            self.container = self._start(self.image)
        except DockerException as error:  # the snapshot's file system, or Docker? A pristine container decides.
            try:
                self._start(self.sandbox.image).remove(force=True)
            except DockerException:
                raise error from None
            raise GradingFailure(Failure("grading", f"the final file system cannot be started as a container: "
                                         f"{error}", policy_caused=True)) from None
        return self

    def _start(self, image: str):  # type: ignore[no-untyped-def]
        settings = container_settings(self.sandbox.limits, network=False, owner_task=self.sandbox.task_id)
        container = self.client.containers.create(
            image, [self.mount.busybox, "sleep", "2147483647"], entrypoint=[], working_dir="/",
            name=f"cligym-grade-{secrets.token_hex(6)}", volumes=self.mount.volumes(self.harness), **settings)
        try:
            container.start()
        except DockerException:
            _try(lambda: container.remove(force=True))  # created but not started: still ours to remove
            raise
        return container

    def __exit__(self, *exc: object) -> None:
        if self.container is not None:
            _try(lambda: self.container.remove(force=True))

    def _busybox(self, *args: str, timeout: float = 60.0) -> str:
        """A file operation of the grader's; it fails only when the final file system stands in its way."""
        result = run_argv(self.client.api, self.container.id, [self.mount.busybox, *args], timeout=timeout)
        if result.exit_code != 0:
            raise GradingFailure(Failure("grading", f"the final file system does not let the tests be put in "
                                         f"place: {result.output[-300:]}", policy_caused=True))
        return result.output

    def prepare(self, tests: Tests) -> None:
        """The tests folder deleted and made anew (nothing planted survives), and the grader's own folders."""
        directory, mount, b = tests.directory.rstrip("/") or "/", self.mount, self.mount.busybox
        folders = " ".join(shlex.quote(folder) for folder in (directory, mount.report.rsplit("/", 1)[0], mount.work))
        made = self._busybox("sh", "-c", f"{b} rm -rf {folders} && {b} mkdir -p {folders} && "
                                         f"{b} readlink -f {shlex.quote(directory)}").strip()
        if made != directory:  # a link among its parents, which Docker, busybox and the tests may each follow their way
            raise GradingFailure(Failure("grading", f"the tests folder {directory} leads to {made!r}: a link was made "
                                         "among its parents", policy_caused=True))

    def audit(self, changes: list[tuple[str, int]], images: Sequence[str], tests: Tests) -> list[str]:
        try:
            return audit(self.client, self.container.id, self.mount, changes, images, self.harness,
                         skip=[tests.directory], pytest_dirs=_pytest_dirs(tests))
        except AuditIncomplete as error:
            return [str(error)]

    def run(self, tests: Tests) -> TestRun:
        if tests.runner in EXTERNAL_RUNNERS:  # imported tasks: their own script and verdict (external.py)
            return run_external(self, tests)
        directory, mount = tests.directory.rstrip("/") or "/", self.mount
        self.container.put_archive(directory, tar_files(tests.files))
        # The runner gets -I -B; Python processes the tests start get the same isolation through the environment.
        env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_ADDOPTS": "", "PYTEST_PLUGINS": "",
               "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPYCACHEPREFIX": f"{mount.work}/no-bytecode", "CLIGYM_TESTS": directory,
               "CLIGYM_JUNIT": mount.report}
        if tests.runner == "pytest":
            argv = [tests.python, "-I", "-B", "-X", f"pycache_prefix={mount.work}/no-bytecode", mount.runner,
                    mount.summary, mount.report, tests.workdir, tests.rootdir or tests.workdir,
                    ",".join(tests.plugins), "--", *tests.pytest_args, directory]
        else:  # a task from elsewhere with its own shell command; the environment's bash runs it
            argv = ["/bin/bash", "-c", tests.command]
        result = run_argv(self.client.api, self.container.id, argv, timeout=tests.timeout, env=env,
                          workdir="/", max_output_bytes=self.sandbox.limits.max_output_bytes)
        if result.timed_out:
            raise GradingFailure(Failure("grading-timeout", f"the tests did not finish within {tests.timeout:g} s",
                                         policy_caused=True))
        return self._read(tests, result.exit_code, result.output)

    def _read(self, tests: Tests, exit_code: int | None, output: str) -> TestRun:
        summary = self._file(self.mount.summary, 1 << 20) if tests.runner == "pytest" else b"{}"
        if summary is None:
            return TestRun({}, output, f"the environment's Python ({tests.python}) could not start the test "
                                       f"runner (exit status {exit_code})", exit_code)
        report = self._file(self.mount.report, MAX_REPORT_BYTES)
        if report is None:
            why = _json(summary).get("error") or f"it exited with {exit_code}"
            return TestRun({}, output, f"the test runner wrote no JUnit report: {why}", exit_code)
        if tests.runner == "pytest" and _json(summary).get("exit_code") != exit_code:
            # pytest writes the report before it returns; a runner that never returned (killed by code of the
            # environment's, for one) leaves a report nobody vouches for
            return TestRun({}, output, f"the test runner did not finish (exit status {exit_code}); its report "
                                       "is not trusted", exit_code)
        try:
            results = parse_junit_results(report)
        except ReportError as error:
            raise GradingFailure(Failure("report", str(error), policy_caused=True)) from None
        return TestRun(results, output, exit_code=exit_code,
                       disagreement=_disagreement(tests, results, exit_code) if tests.runner == "pytest" else "")

    def _file(self, path: str, limit: int) -> bytes | None:
        try:
            stream, info = self.client.api.get_archive(self.container.id, path)
        except NotFound:
            return None
        if info.get("size", 0) > limit:
            raise GradingFailure(Failure("report", f"{path} is {info['size']} bytes (at most {limit} are read)",
                                         policy_caused=True))
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            handle = archive.extractfile(member) if member and member.isfile() else None
            return handle.read(limit + 1) if handle else None


def _pytest_dirs(tests: Tests) -> list[str]:
    """The folders whose conftest.py and ini files pytest may read for these tests, the rewritten tests folder
    aside: the tests folder's, the root directory's and the working directory's ancestors."""
    own = PurePosixPath(tests.directory or "/")
    found = {str(folder) for path in (tests.directory, tests.rootdir, tests.workdir) if path
             for folder in (PurePosixPath(path), *PurePosixPath(path).parents)}
    return sorted(f for f in found if not PurePosixPath(f).is_relative_to(own))


def _disagreement(tests: Tests, results: dict[str, TestResult], exit_code: int | None) -> str:
    """pytest exits 0 exactly when nothing failed; a report that says otherwise was not written by it alone."""
    failed = any(r.outcome in ("failed", "error") for r in results.values())
    if exit_code == 0 and failed:
        return "pytest exited with status 0 but its report lists failures"
    if exit_code == 1 and not failed:
        return "pytest exited with status 1 (tests failed) but its report lists no failure"
    return ""


def _json(data: bytes) -> dict:
    try:
        value = json.loads(data)
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}


def _try(action) -> bool:  # type: ignore[no-untyped-def]
    """Best effort for clean-up steps: a container already gone is not an error here."""
    try:
        action()
        return True
    except (DockerException, OSError):
        return False
