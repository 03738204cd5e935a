"""Read test outcomes from a JUnit XML report, never from terminal text.

Outcomes are kept distinct: passed, failed, error, skipped, xfailed. Test ids are pytest node ids
(`tests/test_x.py::TestA::test_b[1]`) when the report carries file names (pytest's `junit_family=xunit1`),
else `classname::name`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import PurePosixPath

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")


class ReportError(ValueError):
    """The report is not JUnit XML."""


def parse_junit(xml: bytes | str) -> dict[str, str]:
    """Map each test id in the report to its outcome."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise ReportError(f"the JUnit report is not valid XML: {error}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"the JUnit report's root element is <{root.tag}>, expected <testsuites> or <testsuite>")
    results: dict[str, str] = {}
    for case in root.iter("testcase"):
        results[_test_id(case)] = _outcome(case)
    return results


def _outcome(case: ElementTree.Element) -> str:
    if case.find("failure") is not None:
        return "failed"
    if case.find("error") is not None:
        return "error"
    skipped = case.find("skipped")
    if skipped is not None:
        return "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
    return "passed"


def _test_id(case: ElementTree.Element) -> str:
    name, classname, file = case.get("name", ""), case.get("classname", ""), case.get("file")
    if not file:
        return f"{classname}::{name}" if classname else name
    module_parts = set(PurePosixPath(file).with_suffix("").parts)
    classes = [part for part in classname.split(".") if part not in module_parts]
    return "::".join([file, *classes, name])
