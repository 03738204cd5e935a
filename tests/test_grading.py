"""JUnit parsing: outcomes stay distinct and ids are pytest node ids."""

from __future__ import annotations

import pytest

from cligym_env.grading import ReportError, parse_junit

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="6">
<testcase classname="tests.test_app" name="test_ok" file="tests/test_app.py" line="1" time="0.1"/>
<testcase classname="tests.test_app.TestGroup" name="test_fail[1.5-x]" file="tests/test_app.py" line="3">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.test_app" name="test_err" file="tests/test_app.py"><error message="fixture"/></testcase>
<testcase classname="tests.test_app" name="test_skip" file="tests/test_app.py"><skipped type="pytest.skip"/></testcase>
<testcase classname="tests.test_app" name="test_xf" file="tests/test_app.py"><skipped type="pytest.xfail"/></testcase>
<testcase classname="suite.Module" name="test_plain"/>
</testsuite></testsuites>"""


def test_outcomes_and_node_ids():
    assert parse_junit(REPORT) == {
        "tests/test_app.py::test_ok": "passed",
        "tests/test_app.py::TestGroup::test_fail[1.5-x]": "failed",
        "tests/test_app.py::test_err": "error",
        "tests/test_app.py::test_skip": "skipped",
        "tests/test_app.py::test_xf": "xfailed",
        "suite.Module::test_plain": "passed",
    }


@pytest.mark.parametrize("bad", ["not xml", "<html><body/></html>"])
def test_bad_reports_raise_a_clear_error(bad):
    with pytest.raises(ReportError, match="JUnit report"):
        parse_junit(bad)


def test_failure_texts_are_kept_for_issue_writing():
    from cligym_env.grading import parse_junit_results

    results = parse_junit_results(REPORT)
    assert results["tests/test_app.py::TestGroup::test_fail[1.5-x]"].message == "assert 1 == 2"
    assert results["tests/test_app.py::TestGroup::test_fail[1.5-x]"].details == "trace"
    assert results["tests/test_app.py::test_ok"].message == ""
