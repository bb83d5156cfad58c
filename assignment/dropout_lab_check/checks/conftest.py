"""Hooks and fixtures for the checks: the grading plugin (autograder.plugin) provides them all.

Run directly as ``pytest autograder/checks --submission PATH [--grade-seed N] [--rubric FILE]``;
the grade command registers its own plugin and these options then stay unused.
"""

from dropout_lab_check.plugin import convention, partial_credit, rng, submission  # noqa: F401  (fixtures)
from dropout_lab_check.plugin import add_options, configure_from_options, summarize


def pytest_addoption(parser):
    add_options(parser)


def pytest_configure(config):
    configure_from_options(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    summarize(terminalreporter, config)
