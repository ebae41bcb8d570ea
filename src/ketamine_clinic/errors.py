"""Errors shared by the core, the command line and the web shell."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from a person or a client: names the field and the problem.

    ``field`` is the argument, key or form field at fault (``"--weight-kg"``,
    ``"dosing.start_rate"``); the message says what is wrong with it.
    """

    # Whether the service that raised it has committed records of the refusal (the limit
    # decisions kept for quality review, the refusal's audit entry) that an enclosing
    # transaction must keep: the API's idempotency wrapper commits them and re-raises.
    keeps_records = False

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class Refusal(UsageError):
    """A clinical decision that refused a request: ``reasons`` are sentences for the
    clinician (the value, the limit, its source, what to do). ``field`` is the input they
    are about."""

    keeps_records = True

    def __init__(self, field: str, reasons: tuple[str, ...] | list[str],
                 codes: tuple[str, ...] = ()) -> None:
        self.reasons = tuple(reasons)
        self.codes = codes  # the unmet gate items, when a gate refused
        super().__init__(field, " ".join(self.reasons))


class Conflict(UsageError):
    """A request that conflicts with one already recorded (HTTP 409)."""
