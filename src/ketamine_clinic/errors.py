"""Errors shared by the core, the command line and the web shell."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from a person or a client: names the field and the problem.

    ``field`` is the argument, key or form field at fault (``"--weight-kg"``,
    ``"dosing.start_rate"``); the message says what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")
