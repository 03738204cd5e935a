"""Read test outcomes from a JUnit XML report, never from terminal text.

Outcomes are kept distinct: passed, failed, error, skipped, xfailed. Test ids are pytest node ids
(`tests/test_x.py::TestA::test_b[1]`) when the report carries file names (pytest's `junit_family=xunit1`),
else `classname::name`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import PurePosixPath
from cligym_env.error import ReportError

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")


@dataclass(frozen=True)
class TestResult:
    outcome: str
    message: str = ""  # the failure's one-line message
    details: str = ""  # the failure's full text (traceback), used to write issues from real errors


def parse_junit(xml: bytes | str) -> dict[str, str]:
    """Map each test id in the report to its outcome."""
    return {test: result.outcome for test, result in parse_junit_results(xml).items()}


def parse_junit_results(xml: bytes | str) -> dict[str, TestResult]:
    """Map each test id in the report to its outcome and failure text."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise ReportError(f"the JUnit report is not valid XML: {error}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"the JUnit report's root element is <{root.tag}>, expected <testsuites> or <testsuite>")
    return {_test_id(case): _result(case) for case in root.iter("testcase")}


def _result(case: ElementTree.Element) -> TestResult:
    for tag, outcome in (("failure", "failed"), ("error", "error")):
        element = case.find(tag)
        if element is not None:
            return TestResult(outcome, element.get("message", ""), element.text or "")
    skipped = case.find("skipped")
    if skipped is not None:
        return TestResult("xfailed" if skipped.get("type") == "pytest.xfail" else "skipped", skipped.get("message", ""))
    return TestResult("passed")


def _test_id(case: ElementTree.Element) -> str:
    name, classname, file = case.get("name", ""), case.get("classname", ""), case.get("file")
    if not file:
        return f"{classname}::{name}" if classname else name
    module_parts = set(PurePosixPath(file).with_suffix("").parts)
    classes = [part for part in classname.split(".") if part not in module_parts]
    return "::".join([file, *classes, name])
