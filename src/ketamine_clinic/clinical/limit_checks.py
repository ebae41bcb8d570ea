"""Limit decisions as smart-pump drug libraries make them, and what it takes to accept them.

* A :class:`~ketamine_clinic.clinical.limits.Limit` compared with a value gives a
  :class:`LimitCheck`: ``ok`` or ``exceeded``. **Bounds are inclusive**: a value equal to
  a bound is ``ok``; any value above the upper (below the lower) bound, however little, is
  ``exceeded``. Values and bounds are exact fractions, so "equal" means equal.
* A wrong-unit or decimal-slip guard gives a :class:`CrossCheck`: ``ok`` or ``confirm``.
* :func:`accept` turns checks plus the clinician's overrides and confirmations into an
  :class:`Acceptance` and the :class:`LimitEvent` list to keep for quality review:
  a hard limit exceeded blocks (no override possible); a soft limit exceeded needs an
  :class:`Override` (a coded reason from ``reference/override_reasons.toml`` plus free
  text); a cross-check that asks needs a confirmation.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.units import to_float
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

__all__ = [
    "KNOWN_QUANTITIES",
    "Acceptance",
    "CheckStatus",
    "CrossCheck",
    "LimitCheck",
    "LimitEvent",
    "Outcome",
    "Override",
    "OverrideReason",
    "accept",
    "evaluate_limit",
    "outcome_of",
    "override_reasons",
    "worst_per_limit",
]

# Every quantity a Limit may bound, with its unit in the name (docs/nomenclature.md).
KNOWN_QUANTITIES = frozenset(
    {
        "rate_mg_per_kg_per_h",
        "rate_mg_per_h",
        "pump_rate_ml_per_h",
        "titration_step_mg_per_h",
        "titration_step_mg_per_kg_per_h",
        "titration_interval_min",
        "session_total_mg",
        "session_total_mg_per_kg",
        "session_duration_h",
        "series_total_mg",
        "series_total_mg_per_kg",
        "bolus_mg",
        "bolus_mg_per_kg",
        "concentration_mg_per_ml",
    }
)


class CheckStatus(enum.Enum):
    OK = "ok"
    EXCEEDED = "exceeded"  # a limit
    CONFIRM = "confirm"  # a cross-check asks the clinician to confirm


class Outcome(enum.Enum):
    """The most severe finding of a check, in increasing severity."""

    OK = "ok"
    CONFIRM = "confirm"  # a cross-check asks; nothing exceeded
    OVERRIDE = "override"  # a soft limit exceeded (and no hard one)
    BLOCKED = "blocked"  # a hard limit exceeded


@cache
@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One limit against one value.

    Attributes
    ----------
    limit
        The limit (quantity, kind, inclusive bounds, source).
    value
        The checked value, in the limit quantity's unit.
    status
        ``OK`` or ``EXCEEDED``.
    side
        ``"upper"`` or ``"lower"``: the bound crossed, or when ``OK`` the nearer bound.
    """

    limit: Limit
    value: Fraction
    status: CheckStatus
    side: str

    @property
    def bound(self) -> Fraction:
        bound = self.limit.upper if self.side == "upper" else self.limit.lower
        assert bound is not None  # side always names a bound the limit has
        return bound

    @property
    def exceeded(self) -> bool:
        return self.status is CheckStatus.EXCEEDED

    @property
    def blocks(self) -> bool:
        return self.exceeded and self.limit.kind is LimitKind.HARD

    @property
    def needs_override(self) -> bool:
        return self.exceeded and self.limit.kind is LimitKind.SOFT

    @property
    def margin(self) -> Fraction:
        """Distance from the value to the bound on ``side``; negative when exceeded."""
        if self.side == "upper":
            return self.bound - self.value
        return self.value - self.bound

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit.quantity,
            "kind": self.limit.kind.value,
            "status": self.status.value,
            "bound": to_float(self.bound),
            "side": self.side,
            "value": to_float(self.value),
            "lower": _shown(self.limit.lower),
            "upper": _shown(self.limit.upper),
            "source": self.limit.source,
        }


def _shown(bound: Fraction | None) -> float | None:
    return None if bound is None else to_float(bound)


def evaluate_limit(limit: Limit, value: Fraction) -> LimitCheck:
    """Compare ``value`` with ``limit``'s inclusive bounds.

    Parameters
    ----------
    limit
        Must have at least one bound.
    value
        In the unit of ``limit.quantity`` (exact).

    Returns
    -------
    LimitCheck
        ``EXCEEDED`` iff ``value < lower`` or ``value > upper``.

    Examples
    --------
    A value equal to the bound is inside it (limits are inclusive):

    >>> from fractions import Fraction
    >>> from ketamine_clinic.clinical.limits import Limit, LimitKind
    >>> hard = Limit("rate_mg_per_h", LimitKind.HARD, None, Fraction(140), "S2")
    >>> evaluate_limit(hard, Fraction(140)).status.value
    'ok'
    >>> evaluate_limit(hard, Fraction(150)).margin
    Fraction(-10, 1)
    """
    lower, upper = limit.lower, limit.upper
    if upper is not None and value > upper:
        return LimitCheck(limit, value, CheckStatus.EXCEEDED, "upper")
    if lower is not None and value < lower:
        return LimitCheck(limit, value, CheckStatus.EXCEEDED, "lower")
    if upper is None and lower is None:
        raise UsageError(f"limits.{limit.quantity}", "a limit needs a lower or an upper bound")
    if lower is None or (upper is not None and upper - value <= value - lower):
        side = "upper"
    else:
        side = "lower"
    return LimitCheck(limit, value, CheckStatus.OK, side)


def worst_per_limit(checks: Iterable[LimitCheck]) -> tuple[LimitCheck, ...]:
    """For each distinct limit, the check with the smallest margin (exceeded ones first).

    Used where one limit was checked at several points (each step of a titration table),
    so that the report shows each limit once, at its most critical value.
    """
    worst: dict[Limit, LimitCheck] = {}
    for check in checks:
        seen = worst.get(check.limit)
        if seen is None or check.margin < seen.margin:
            worst[check.limit] = check
    return tuple(worst.values())


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """A wrong-unit / decimal-slip guard.

    Attributes
    ----------
    code
        ``"pump_rate_equals_mg_per_h"`` or ``"usual_rate_ratio"``.
    status
        ``OK`` or ``CONFIRM``.
    message
        What was found, for the clinician.
    value, reference
        The entered number and the number it was compared with (unit in ``unit``).
    unit
        Unit of ``value`` and ``reference``.
    source
        Where the guard's configuration comes from.
    """

    code: str
    status: CheckStatus
    message: str
    value: Fraction
    reference: Fraction
    unit: str
    source: str

    @property
    def asks(self) -> bool:
        return self.status is CheckStatus.CONFIRM

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.code,
            "status": self.status.value,
            "message": self.message,
            "value": to_float(self.value),
            "reference": to_float(self.reference),
            "unit": self.unit,
            "source": self.source,
        }


def outcome_of(limits: Iterable[LimitCheck], cross_checks: Iterable[CrossCheck]) -> Outcome:
    """The most severe finding: blocked > override > confirm > ok."""
    limits = tuple(limits)
    if any(c.blocks for c in limits):
        return Outcome.BLOCKED
    if any(c.needs_override for c in limits):
        return Outcome.OVERRIDE
    if any(c.asks for c in cross_checks):
        return Outcome.CONFIRM
    return Outcome.OK


# --------------------------------------------------------------------------- overrides


@dataclass(frozen=True, slots=True)
class OverrideReason:
    code: str
    label: str


@cache
def _override_reason_data() -> tuple[tuple[OverrideReason, ...], str]:
    raw = read_toml("override_reasons.toml")
    reasons = tuple(OverrideReason(str(r["code"]), str(r["label"])) for r in raw["reason"])
    return reasons, str(raw["source"])


def override_reasons() -> tuple[OverrideReason, ...]:
    """The coded reasons a soft-limit override may give (``reference/override_reasons.toml``)."""
    return _override_reason_data()[0]


@dataclass(frozen=True, slots=True)
class Override:
    """A physician's override of a soft limit on ``quantity``.

    Who and when are added by the caller (the web layer) when it stores the event.
    """

    quantity: str
    reason_code: str
    free_text: str

    def to_dict(self) -> dict[str, str]:
        return {
            "quantity": self.quantity,
            "reason_code": self.reason_code,
            "free_text": self.free_text,
        }


@dataclass(frozen=True, slots=True)
class LimitEvent:
    """One event to keep for quality review.

    ``event`` is ``"block"`` (hard limit exceeded), ``"override"`` (soft limit exceeded and
    overridden), ``"hit"`` (soft limit exceeded, not overridden) or ``"confirm"`` (a
    cross-check asked and was confirmed).
    """

    event: str
    check: LimitCheck | None = None
    cross_check: CrossCheck | None = None
    override: Override | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "check": None if self.check is None else self.check.to_dict(),
            "cross_check": None if self.cross_check is None else self.cross_check.to_dict(),
            "override": None if self.override is None else self.override.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Acceptance:
    """Whether checked values may proceed, and the events to store.

    ``accepted`` is true iff no hard limit is exceeded, every exceeded soft limit has an
    override and every asking cross-check is confirmed.
    """

    accepted: bool
    outcome: Outcome
    events: tuple[LimitEvent, ...]
    missing_overrides: tuple[LimitCheck, ...]
    missing_confirmations: tuple[CrossCheck, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "outcome": self.outcome.value,
            "events": [e.to_dict() for e in self.events],
            "missing_overrides": [c.to_dict() for c in self.missing_overrides],
            "missing_confirmations": [c.to_dict() for c in self.missing_confirmations],
        }


def accept(
    limit_checks: Sequence[LimitCheck],
    cross_checks: Sequence[CrossCheck] = (),
    *,
    overrides: Sequence[Override] = (),
    confirmed: Collection[str] = (),
) -> Acceptance:
    """Decide whether checked values may proceed, given overrides and confirmations.

    Parameters
    ----------
    limit_checks, cross_checks
        From :func:`~ketamine_clinic.clinical.dosing.check_rate` or
        :func:`~ketamine_clinic.clinical.dosing.check_order`.
    overrides
        One per exceeded soft limit (matched by quantity). An override of a hard limit
        does not lift the block (a hard limit cannot be overridden).
    confirmed
        Codes of the cross-checks the clinician confirmed.

    Raises
    ------
    UsageError
        An unknown reason code, a blank free text, or an override for a quantity with no
        exceeded limit (field ``override.<quantity>...``).
    """
    codes = {r.code for r in override_reasons()}
    by_quantity: dict[str, Override] = {}
    exceeded = {c.limit.quantity for c in limit_checks if c.exceeded}
    for ov in overrides:
        field = f"override.{ov.quantity}"
        if ov.reason_code not in codes:
            raise UsageError(f"{field}.reason_code", f"unknown reason code {ov.reason_code!r}")
        if not ov.free_text.strip():
            raise UsageError(f"{field}.free_text", "an override needs a written explanation")
        if ov.quantity not in exceeded:
            raise UsageError(field, "no limit on this quantity is exceeded")
        by_quantity[ov.quantity] = ov

    events: list[LimitEvent] = []
    missing: list[LimitCheck] = []
    for check in limit_checks:
        if check.blocks:
            events.append(LimitEvent("block", check=check))
        elif check.needs_override:
            given = by_quantity.get(check.limit.quantity)
            if given is None:
                events.append(LimitEvent("hit", check=check))
                missing.append(check)
            else:
                events.append(LimitEvent("override", check=check, override=given))
    unconfirmed: list[CrossCheck] = []
    for cross in cross_checks:
        if not cross.asks:
            continue
        if cross.code in confirmed:
            events.append(LimitEvent("confirm", cross_check=cross))
        else:
            unconfirmed.append(cross)
    blocked = any(c.blocks for c in limit_checks)
    if blocked:
        remaining = Outcome.BLOCKED
    elif missing:
        remaining = Outcome.OVERRIDE
    elif unconfirmed:
        remaining = Outcome.CONFIRM
    else:
        remaining = Outcome.OK
    return Acceptance(
        accepted=remaining is Outcome.OK,
        outcome=remaining,
        events=tuple(events),
        missing_overrides=tuple(missing),
        missing_confirmations=tuple(unconfirmed),
    )
