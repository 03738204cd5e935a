"""Grading: hidden tests run at the end of an episode, outcomes read from JUnit XML."""

from cligym_env.grading.grader import Grade, TestRun, grade, run_tests, run_tests_on_image
from cligym_env.grading.junit import OUTCOMES, ReportError, TestResult, parse_junit, parse_junit_results

__all__ = ["OUTCOMES", "Grade", "ReportError", "TestResult", "TestRun", "grade", "parse_junit",
           "parse_junit_results", "run_tests", "run_tests_on_image"]
