"""Dropout Lab's grading system: releases the assignment and grades submissions in a sandbox."""

__version__ = "0.1.0"
