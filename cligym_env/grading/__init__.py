"""Grading: hidden tests run at the end of an episode, outcomes read from JUnit XML."""

from cligym_env.grading.grader import Grade, grade, run_tests
from cligym_env.grading.junit import OUTCOMES, ReportError, parse_junit

__all__ = ["OUTCOMES", "Grade", "ReportError", "grade", "parse_junit", "run_tests"]
