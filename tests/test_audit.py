"""The audit's rules and the grader's small pure parts, without Docker: what counts as code that could run during
grading, which content is trusted, how overlay changes are read, and when pytest's exit status contradicts its
report. The red-team suite (tests/test_redteam.py) exercises all of it against real containers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cligym_env.error import ChangesUnlistable
from cligym_env.grading.audit import Manifest, audited_paths, protected
from cligym_env.grading.grader import _disagreement, _pytest_dirs
from cligym_env.grading.junit import TestResult as Result  # aliased so pytest does not collect it
from cligym_env.runtime.sandbox import MAX_DEPTH, Limits, overlay_changes, parse_size
from cligym_env.tasks.task import Tests as TaskTests  # aliased so pytest does not collect it

REGULAR, EXECUTABLE = stat.S_IFREG | 0o644, stat.S_IFREG | 0o755
SITE = "/opt/venv/lib/python3.11/site-packages"


@pytest.mark.parametrize("path, mode, expected", [
    (f"{SITE}/evil.pth", REGULAR, True),
    (f"{SITE}/sitecustomize.py", REGULAR, True),
    ("/app/conftest.py", REGULAR, True),
    ("/pytest.ini", REGULAR, True),
    ("/opt/project/pyproject.toml", REGULAR, True),
    ("/opt/venv/pyvenv.cfg", REGULAR, True),
    ("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", REGULAR, True),
    ("/usr/local/bin/mkdir", REGULAR, True),  # on PATH, even without the exec bit yet
    ("/etc/ld.so.preload", REGULAR, True),
    ("/etc/ld.so.cache", REGULAR, True),  # it can send a library name to any file
    ("/tmp/rtlib/libexpat.so.1", REGULAR, True),  # ... scratch folders included
    ("/opt/data/run.sh", EXECUTABLE, True),
    ("/tmp/fix.py", REGULAR, False),  # a policy's scratch script: nothing imports it
    ("/root/notes.txt", REGULAR, False),
    ("/tmp/evil.sh", EXECUTABLE, False),  # reachable only through a link, which is audited
    (f"{SITE}/pkg/__pycache__/mod.cpython-311.pyc", REGULAR, False),  # never read: empty pycache prefix
    (f"{SITE}/pkg/__pycache__/mod.cpython-311.opt-2.pyc", REGULAR, False),
    ("/srv/__pycache__/pkg/core.pyc", REGULAR, True),  # sourceless, under a folder named __pycache__
    (f"{SITE}/pkg/__pycache__/core.pyc", REGULAR, True),  # a link to that folder makes it a package
    (f"{SITE}/pkg/__pycache__/mod.py", REGULAR, True),  # a source is code wherever it is (a link may lead there)
    ("/usr/local/share/__pycache__/pkg/__init__.py", REGULAR, True),
    ("/usr/bin/python3.11._pth", REGULAR, True),  # replaces sys.path
    ("/opt/python/python._pth", REGULAR, True),
    (f"{SITE}/pkg/mod.pyc", REGULAR, True),  # a sourceless module would be imported
    ("/etc/inventory/settings.ini", REGULAR, False),  # configuration is what repairs change
])
def test_protected_kinds(path: str, mode: int, expected: bool) -> None:
    assert protected(path, mode) is expected


def test_trust_needs_the_same_path_or_a_wheel_member_under_site_packages() -> None:
    manifest = Manifest({"/usr/bin/python3.11": "aa"}, {"click/core.py": {"bb"}, "conftest.py": {"cc"}})
    assert manifest.trusts("/usr/bin/python3.11", "aa")
    assert not manifest.trusts("/usr/local/bin/python3.11", "aa")  # same bytes elsewhere: not ours
    assert manifest.trusts(f"{SITE}/click/core.py", "bb")
    assert manifest.trusts("/usr/lib/python3/dist-packages/click/core.py", "bb")
    assert not manifest.trusts(f"{SITE}/click/core.py", "b0")
    assert not manifest.trusts("/app/click/core.py", "bb")  # not installed by pip there
    assert not manifest.trusts("/app/conftest.py", "cc")


def test_content_moved_back_is_trusted_but_configuration_must_stay_where_it_was() -> None:
    manifest = Manifest({}, {}, frozenset({"dd"}))  # "dd" exists somewhere in the task's images
    assert manifest.trusts("/app/inventory/core.py", "dd")
    for config in ("/app/conftest.py", f"{SITE}/x.pth", "/pytest.ini", f"{SITE}/sitecustomize.py"):
        assert not manifest.trusts(config, "dd")


def test_folders_nested_past_max_depth_cannot_be_listed(tmp_path: Path) -> None:
    """The walk is finite in stack and descriptors whatever the policy nests (1,200 levels raised RecursionError)."""
    deep = tmp_path.joinpath(*["d"] * (MAX_DEPTH - 1))
    deep.mkdir(parents=True)
    assert len(overlay_changes(str(tmp_path))) == MAX_DEPTH - 1
    (deep / "d" / "d").mkdir(parents=True)
    with pytest.raises(ChangesUnlistable):
        overlay_changes(str(tmp_path))


def test_overlay_changes_report_whiteouts_as_deletions(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "new.py").write_text("x = 1\n")
    os.symlink("/tmp/elsewhere", tmp_path / "app" / "link")
    os.mknod(tmp_path / "app" / "gone.py", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    assert sorted(overlay_changes(str(tmp_path))) == [("/app", 0), ("/app/gone.py", 2), ("/app/link", 0),
                                                      ("/app/new.py", 0)]


def test_sizes() -> None:
    assert parse_size("2g") == 2 << 30 and parse_size("300m") == 300 << 20 and parse_size("512") == 512
    assert Limits(disk="1.5G").disk_bytes == int(1.5 * (1 << 30))
    with pytest.raises(ValueError, match="'lots'"):
        parse_size("lots")


def test_exit_status_must_agree_with_the_report() -> None:
    tests = TaskTests(python="/usr/bin/python3")
    passed, failed = {"t::a": Result("passed")}, {"t::a": Result("passed"), "t::b": Result("failed")}
    assert _disagreement(tests, passed, 0) == "" and _disagreement(tests, failed, 1) == ""
    assert "status 0" in _disagreement(tests, failed, 0)
    assert "status 1" in _disagreement(tests, passed, 1)
    assert _disagreement(tests, passed, 2) == ""  # interrupted: missing tests fail on their own


def test_only_dockers_own_files_are_left_out() -> None:
    changes = [("/etc/hosts", 0), ("/etc/hosts.d/x.py", 1), ("/usr/sbin/docker-init2", 1), ("/dev/shm/x.py", 1),
               ("/.dockerenv", 0), ("/.dockerenvx/y.py", 1), ("/cligym/tests/conftest.py", 1), ("/app/gone.py", 2)]
    assert audited_paths(changes, skip=["/cligym/tests"]) == ["/.dockerenvx/y.py", "/etc/hosts.d/x.py",
                                                                "/usr/sbin/docker-init2"]


def test_pytest_configs_are_looked_for_above_the_tests_the_rootdir_and_the_workdir() -> None:
    tests = TaskTests(python="/x", workdir="/app", rootdir="/cligym/tests", directory="/cligym/tests")
    assert _pytest_dirs(tests) == ["/", "/app", "/cligym"]  # the tests folder itself is written anew
    generated = TaskTests(python="/x", workdir="/project", rootdir="/project", directory="/project/tests")
    assert _pytest_dirs(generated) == ["/", "/project"]
