"""The controlled-substance record for ketamine (DEA Schedule III): every decision of the
stock ledger, free of Django and of any clock.

The ledger
----------
Each entry moves ketamine between two places: a numbered container (vial) in the site's
stock, and the custody of one infusion session (drawn into a bag and not yet given, wasted
or returned). :data:`EFFECTS` says which way each kind moves it; :func:`post` applies one
entry to the balances before it and refuses any that would go below zero. A correction is
a new entry of the same kind pointing at the original: its effect is its own minus the
original's (:func:`correction_effect`), so the original stays in the record untouched.

Quantities are ``*_mg`` as exact :class:`~fractions.Fraction`; the web layer stores them
to the microgram (:func:`ledger_mg`). Volumes are ``*_ml``.

Reconciliation, counts and cases
--------------------------------
:func:`reconcile` checks one session: drawn = given (from the chart) + wasted + returned.
:func:`compare_count` compares a blind count with the ledger. Discrepancies move through
:func:`discrepancy_transition`; theft or significant loss has the deadlines of
:func:`loss_deadlines` [CFR-1301.76b]. Inventories are built by :func:`inventory_lines`
[CFR-1304.11]. The ledger's hash chain is :func:`ledger_hash` / :func:`verify_ledger`.

Every figure (tolerances, deadlines, intervals, witness counts) comes from
``reference/controlled_substances.toml`` through :func:`load_rules`.

Why one module (over 600 lines): it is one ledger. Entries, balances, the reconciliation
of a session, counts and the hash chain read the same entry type and the same rules, and
each check is read against the others when the ledger is audited.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical import clock, units
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

# Storage resolution of ledger quantities: micrograms. Not a clinical figure: it is far
# below what a syringe measures, so rounding the exact charted dose to it changes nothing.
LEDGER_MG_QUANTUM = Decimal("0.001")

# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class StockRules:
    """The ledger's figures, each with the source key it comes from."""

    version: str
    retention_years: int
    biennial_interval_years: int
    notice_business_days: int
    form_106_calendar_days: int
    form_106_history_years: int
    loss_types: tuple[str, ...]
    waste_witnesses: int
    destroy_witnesses: int
    measurement_tolerance_ml: Fraction
    late_entry_after: timedelta
    draw_requires_open_day: bool
    sources: Mapping[str, str]
    cited: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "retention_years": self.retention_years,
            "biennial_interval_years": self.biennial_interval_years,
            "notice_business_days": self.notice_business_days,
            "form_106_calendar_days": self.form_106_calendar_days,
            "waste_witnesses": self.waste_witnesses,
            "destroy_witnesses": self.destroy_witnesses,
            "measurement_tolerance_ml": str(self.measurement_tolerance_ml),
            "late_entry_after_min": self.late_entry_after / timedelta(minutes=1),
            "draw_requires_open_day": self.draw_requires_open_day,
        }


def rules_from_mapping(raw: Mapping[str, Any]) -> StockRules:
    """Parse the reference table; every cited key must be one of its sources."""
    sources = {s["key"]: s["citation"] for s in raw["source"]}
    cited = {
        "retention_years": raw["retention"]["source"],
        "biennial_interval_years": raw["inventory"]["source"],
        "loss": raw["loss"]["source"],
        "waste_witnesses": raw["witness"]["waste_source"],
        "destroy_witnesses": raw["witness"]["destroy_source"],
        "policy": raw["policy"]["source"],
    }
    unknown = sorted(set(cited.values()) - set(sources))
    if unknown:
        raise UsageError("source", f"cites unknown sources {', '.join(unknown)}")
    policy = raw["policy"]
    return StockRules(
        version=str(raw["version"]),
        retention_years=int(raw["retention"]["years"]),
        biennial_interval_years=int(raw["inventory"]["biennial_interval_years"]),
        notice_business_days=int(raw["loss"]["notice_business_days"]),
        form_106_calendar_days=int(raw["loss"]["form_106_calendar_days"]),
        form_106_history_years=int(raw["loss"]["form_106_history_years"]),
        loss_types=tuple(raw["loss"]["types"]),
        waste_witnesses=int(raw["witness"]["waste_witnesses"]),
        destroy_witnesses=int(raw["witness"]["destroy_witnesses"]),
        measurement_tolerance_ml=units.exact(policy["measurement_tolerance_ml"],
                                             field="policy.measurement_tolerance_ml"),
        late_entry_after=timedelta(minutes=int(policy["late_entry_after_min"])),
        draw_requires_open_day=bool(policy["draw_requires_open_day"]),
        sources=sources,
        cited=cited,
    )


@cache
def load_rules() -> StockRules:
    """The shipped ``controlled_substances.toml``."""
    return rules_from_mapping(read_toml("controlled_substances.toml"))


# --------------------------------------------------------------------------- quantities


def ledger_mg(value: Fraction) -> Decimal:
    """An exact amount [mg] as stored in the ledger (to the microgram)."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        LEDGER_MG_QUANTUM, rounding=ROUND_HALF_EVEN)


def quantity_mg(value: units.ExactInput, *, field: str, allow_zero: bool = False) -> Fraction:
    """A quantity typed by a person or a client: a number, never negative."""
    number = units.exact(value, field=field)
    if number < 0:
        raise UsageError(field, f"cannot be negative (got {float(number):g} mg)")
    if number == 0 and not allow_zero:
        raise UsageError(field, "must be more than zero")
    return number


def mg_from_ml(volume_ml: units.ExactInput, strength_mg_per_ml: Fraction, *, field: str,
               allow_zero: bool = False) -> Fraction:
    """A measured volume [mL] of a product of ``strength_mg_per_ml`` as an amount [mg]."""
    volume = units.exact(volume_ml, field=field)
    if volume < 0:
        raise UsageError(field, f"cannot be negative (got {float(volume):g} mL)")
    if volume == 0 and not allow_zero:
        raise UsageError(field, "must be more than zero")
    return units.amount_mg(volume, strength_mg_per_ml)


def show_mg(value: Fraction | Decimal) -> str:
    """An amount for a sentence: ``"250 mg"``, ``"81.667 mg"``."""
    number = ledger_mg(Fraction(value)).normalize()
    text = format(number, "f")
    return f"{text} mg"


# --------------------------------------------------------------------------- the ledger


class EntryKind(enum.StrEnum):
    RECEIVE = "receive"
    DRAW = "draw"
    ADMINISTER = "administer"
    WASTE = "waste"
    RETURN = "return"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    DESTROY = "destroy"
    LOSS = "loss"
    COUNT = "count"
    ADJUST = "adjust"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    EntryKind.RECEIVE: "Received", EntryKind.DRAW: "Drawn for a session",
    EntryKind.ADMINISTER: "Administered", EntryKind.WASTE: "Wasted (witnessed)",
    EntryKind.RETURN: "Returned to stock", EntryKind.TRANSFER_OUT: "Transferred out",
    EntryKind.TRANSFER_IN: "Transferred in", EntryKind.DESTROY: "Destroyed",
    EntryKind.LOSS: "Loss or theft", EntryKind.COUNT: "Counted",
    EntryKind.ADJUST: "Adjusted after a discrepancy",
}


@dataclass(frozen=True, slots=True)
class Effect:
    """Which way an entry moves ketamine: +1, 0 or -1 on the container and on the session."""

    container: int
    custody: int


EFFECTS: Mapping[EntryKind, Effect] = {
    EntryKind.RECEIVE: Effect(+1, 0),
    EntryKind.DRAW: Effect(-1, +1),
    EntryKind.ADMINISTER: Effect(0, -1),
    EntryKind.WASTE: Effect(0, -1),
    EntryKind.RETURN: Effect(+1, -1),
    EntryKind.TRANSFER_OUT: Effect(-1, 0),
    EntryKind.TRANSFER_IN: Effect(+1, 0),
    EntryKind.DESTROY: Effect(-1, 0),
    EntryKind.LOSS: Effect(-1, 0),
    EntryKind.COUNT: Effect(0, 0),
    EntryKind.ADJUST: Effect(+1, 0),  # signed by the adjustment's direction
}

# Kinds that need a container, and kinds that need a session.
NEEDS_CONTAINER = frozenset(k for k, e in EFFECTS.items() if e.container) | {EntryKind.COUNT}
NEEDS_SESSION = frozenset(k for k, e in EFFECTS.items() if e.custody)


@dataclass(frozen=True, slots=True)
class Balances:
    """Amounts [mg] before or after an entry: the container, the site's stock of the
    product, and the session's custody (0 when the entry has no session)."""

    container_mg: Fraction = Fraction(0)
    site_mg: Fraction = Fraction(0)
    custody_mg: Fraction = Fraction(0)


@dataclass(frozen=True, slots=True)
class Deltas:
    """The signed change [mg] an entry makes to the container and to the session."""

    container_mg: Fraction
    custody_mg: Fraction

    def __sub__(self, other: Deltas) -> Deltas:
        return Deltas(self.container_mg - other.container_mg,
                      self.custody_mg - other.custody_mg)


def deltas(kind: EntryKind, quantity: Fraction, *, direction: int = 1,
           from_custody: bool = False) -> Deltas:
    """The signed change of one entry of ``kind`` moving ``quantity`` [mg].

    ``direction`` is -1 only for an ADJUST that takes stock away. ``from_custody`` is for a
    LOSS of ketamine already drawn for a session (out of the session, not a container).
    """
    if direction not in (1, -1) or (direction == -1 and kind is not EntryKind.ADJUST):
        raise UsageError("direction", "only an adjustment may take stock away")
    if from_custody:
        if kind is not EntryKind.LOSS:
            raise UsageError("kind", "only a loss can be taken from a session's custody")
        return Deltas(Fraction(0), -quantity)
    effect = EFFECTS[kind]
    return Deltas(quantity * effect.container * direction, quantity * effect.custody)


def correction_effect(original: Deltas, corrected: Deltas) -> Deltas:
    """What a correcting entry changes: the corrected movement minus the original one."""
    return corrected - original


def post(before: Balances, change: Deltas, *, container_label: str = "the container",
         what: str = "quantity_mg") -> Balances:
    """The balances after applying ``change``; refuses any that would go below zero."""
    after = Balances(before.container_mg + change.container_mg,
                     before.site_mg + change.container_mg,
                     before.custody_mg + change.custody_mg)
    if after.container_mg < 0:
        raise UsageError(what, f"{container_label} holds only {show_mg(before.container_mg)}; "
                               f"{show_mg(-change.container_mg)} cannot be taken from it")
    if after.custody_mg < 0:
        raise UsageError(what, f"the session holds only {show_mg(before.custody_mg)} drawn "
                               f"and not yet accounted for; {show_mg(-change.custody_mg)} "
                               "is more than that")
    if after.site_mg < 0:  # cannot happen if container balances are right; kept as a guard
        raise UsageError(what, "the site's stock would go below zero")
    return after


# --------------------------------------------------------------------------- refusals


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What a draw needs to know about a vial."""

    label: str
    balance_mg: Fraction
    expires_on: date
    site_registered: bool = True


def check_draw(vial: ContainerFacts, amount_mg: Fraction, *, on: date) -> None:
    """Refuse a draw from an expired lot, an empty vial, or more than the vial holds.

    A lot may be used through its expiry date; from the next day it awaits destruction.
    """
    if on > vial.expires_on:
        raise UsageError("container", f"{vial.label} expired on {vial.expires_on:%Y-%m-%d}: "
                                      "it may not be drawn from; set it aside for destruction")
    if vial.balance_mg <= 0:
        raise UsageError("container", f"{vial.label} is empty; choose another vial")
    if amount_mg > vial.balance_mg:
        raise UsageError("quantity_mg", f"{vial.label} holds {show_mg(vial.balance_mg)}; "
                                        f"{show_mg(amount_mg)} cannot be drawn from it")


def check_witnesses(kind: EntryKind, *, recorded_by: int, witnesses: Sequence[int],
                    rules: StockRules, on_site: bool = True) -> None:
    """Wastage needs a witness who is not the person wasting [ASHP-2022]; destruction on
    site needs two different witnesses [CFR-1317]. Nothing else takes witnesses."""
    if len(set(witnesses)) != len(witnesses):
        raise UsageError("witness", "the same person cannot witness twice")
    if kind is EntryKind.WASTE:
        if len(witnesses) < rules.waste_witnesses:
            raise UsageError("witness", "a waste needs a second authorised person as witness")
        if recorded_by in witnesses:
            raise UsageError("witness", "you cannot witness your own waste; ask a colleague")
    elif kind is EntryKind.DESTROY and on_site and len(witnesses) < rules.destroy_witnesses:
        raise UsageError("witness", f"destruction on site needs {rules.destroy_witnesses} "
                                    "authorised employees as witnesses (DEA Form 41)")


def check_transfer(*, to_registration: str, from_registration: str) -> None:
    """Stock may go only to another registered location."""
    if not to_registration.strip():
        raise UsageError("to_site", "the receiving site has no DEA registration on file; "
                                    "enter its registration before transferring stock")
    if to_registration.strip() == from_registration.strip():
        raise UsageError("to_site", "stock cannot be transferred to the same registration")


def is_late(occurred_at: datetime, recorded_at: datetime, rules: StockRules) -> bool:
    """An entry recorded later after the act than the clinic's policy allows."""
    return recorded_at - occurred_at > rules.late_entry_after


def check_times(occurred_at: datetime, recorded_at: datetime) -> None:
    clock.aware("occurred_at", occurred_at)
    if occurred_at > recorded_at:
        raise UsageError("occurred_at", "is in the future; enter when it actually happened")


# --------------------------------------------------------------------------- reconciliation


class ReconciliationStatus(enum.StrEnum):
    NOTHING_DRAWN = "nothing_drawn"
    RECONCILED = "reconciled"
    WASTE_DUE = "waste_due"
    OVER_ACCOUNTED = "over_accounted"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One session's ketamine: drawn = given + wasted + returned, within the tolerance."""

    drawn_mg: Fraction
    given_mg: Fraction
    wasted_mg: Fraction
    returned_mg: Fraction
    tolerance_mg: Fraction
    status: ReconciliationStatus
    message: str

    @property
    def difference_mg(self) -> Fraction:
        """Drawn and not accounted for [mg]; negative when more was accounted than drawn."""
        return self.drawn_mg - self.given_mg - self.wasted_mg - self.returned_mg

    @property
    def reconciled(self) -> bool:
        return self.status in (ReconciliationStatus.RECONCILED,
                               ReconciliationStatus.NOTHING_DRAWN)

    @property
    def expected_waste_mg(self) -> Fraction:
        """What is left to waste [mg]: drawn − given − returned − already wasted."""
        return max(self.difference_mg, Fraction(0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "drawn_mg": str(self.drawn_mg), "given_mg": str(self.given_mg),
            "wasted_mg": str(self.wasted_mg), "returned_mg": str(self.returned_mg),
            "difference_mg": str(self.difference_mg), "tolerance_mg": str(self.tolerance_mg),
            "status": self.status.value, "message": self.message,
        }


def reconcile(*, drawn_mg: Fraction, given_mg: Fraction, wasted_mg: Fraction,
              returned_mg: Fraction, tolerance_mg: Fraction) -> Reconciliation:
    """Compare what a session drew with what the chart says was given and what was wasted
    or returned. ``given_mg`` is the charted dose (from the rate segments), never typed."""
    diff = drawn_mg - given_mg - wasted_mg - returned_mg
    if drawn_mg == 0 and given_mg == 0 and wasted_mg == 0 and returned_mg == 0:
        status, message = ReconciliationStatus.NOTHING_DRAWN, "No ketamine was drawn."
    elif abs(diff) <= tolerance_mg:
        status = ReconciliationStatus.RECONCILED
        message = (f"Reconciled: {show_mg(drawn_mg)} drawn = {show_mg(given_mg)} given "
                   f"+ {show_mg(wasted_mg)} wasted + {show_mg(returned_mg)} returned.")
    elif diff > 0:
        status = ReconciliationStatus.WASTE_DUE
        message = (f"{show_mg(diff)} drawn is not yet accounted for ({show_mg(drawn_mg)} drawn, "
                   f"{show_mg(given_mg)} given by the chart, {show_mg(wasted_mg)} wasted): "
                   "waste it with a witness, or return unopened vials to stock.")
    else:
        status = ReconciliationStatus.OVER_ACCOUNTED
        message = (f"{show_mg(-diff)} more was given or wasted than was drawn "
                   f"({show_mg(drawn_mg)} drawn, {show_mg(given_mg)} given by the chart, "
                   f"{show_mg(wasted_mg)} wasted): check the draws and the chart; this is "
                   "a discrepancy.")
    return Reconciliation(drawn_mg, given_mg, wasted_mg, returned_mg, tolerance_mg, status,
                          message)


# --------------------------------------------------------------------------- counts


@dataclass(frozen=True, slots=True)
class CountLine:
    container_label: str
    expected_mg: Fraction
    counted_mg: Fraction
    tolerance_mg: Fraction

    @property
    def difference_mg(self) -> Fraction:
        """Counted minus expected [mg]: negative when less is there than the ledger says."""
        return self.counted_mg - self.expected_mg

    @property
    def matches(self) -> bool:
        return abs(self.difference_mg) <= self.tolerance_mg

    def message(self) -> str:
        if self.matches:
            return f"{self.container_label}: {show_mg(self.counted_mg)} counted, as recorded."
        word = "short" if self.difference_mg < 0 else "over"
        return (f"{self.container_label}: {show_mg(self.counted_mg)} counted, the ledger has "
                f"{show_mg(self.expected_mg)} ({show_mg(abs(self.difference_mg))} {word}); "
                "explain or escalate the discrepancy.")


def compare_count(lines: Iterable[CountLine]) -> tuple[CountLine, ...]:
    """The lines of a blind count that do not match the ledger."""
    return tuple(line for line in lines if not line.matches)


class DayState(enum.StrEnum):
    NOT_OPENED = "not_opened"
    OPEN = "open"
    CLOSED = "closed"


class CountMoment(enum.StrEnum):
    OPENING = "opening"
    CLOSING = "closing"
    SPOT = "spot"


def check_count(day: DayState, moment: CountMoment) -> DayState:
    """The clinic day after a count at ``moment``; refuses a count on a closed day."""
    if day is DayState.CLOSED:
        raise UsageError("day", "this clinic day is closed; counts go on the next clinic day")
    if moment is CountMoment.OPENING:
        if day is DayState.OPEN:
            raise UsageError("moment", "the day is already open; record a spot or closing count")
        return DayState.OPEN
    if day is DayState.NOT_OPENED:
        raise UsageError("moment", "open the day with the opening count first")
    return DayState.CLOSED if moment is CountMoment.CLOSING else day


# --------------------------------------------------------------------------- discrepancies


class DiscrepancyState(enum.StrEnum):
    OPEN = "open"
    EXPLAINED = "explained"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


class DiscrepancyEvent(enum.StrEnum):
    EXPLAIN = "explain"
    RESOLVE = "resolve"
    ESCALATE = "escalate"


_DISCREPANCY: Mapping[tuple[DiscrepancyState, DiscrepancyEvent], DiscrepancyState] = {
    (DiscrepancyState.OPEN, DiscrepancyEvent.EXPLAIN): DiscrepancyState.EXPLAINED,
    (DiscrepancyState.EXPLAINED, DiscrepancyEvent.EXPLAIN): DiscrepancyState.EXPLAINED,
    (DiscrepancyState.EXPLAINED, DiscrepancyEvent.RESOLVE): DiscrepancyState.RESOLVED,
    (DiscrepancyState.OPEN, DiscrepancyEvent.ESCALATE): DiscrepancyState.ESCALATED,
    (DiscrepancyState.EXPLAINED, DiscrepancyEvent.ESCALATE): DiscrepancyState.ESCALATED,
}


def discrepancy_transition(state: DiscrepancyState, event: DiscrepancyEvent,
                           note: str) -> DiscrepancyState:
    """open → explained → resolved, or escalated to a loss case; every step needs a note."""
    if not note.strip():
        raise UsageError("note", "write what was found and done")
    target = _DISCREPANCY.get((state, event))
    if target is None:
        if event is DiscrepancyEvent.RESOLVE and state is DiscrepancyState.OPEN:
            raise UsageError("event", "explain the discrepancy before resolving it")
        raise UsageError("event", f"a discrepancy that is {state.value} cannot be "
                                  f"{event.value}d")
    return target


# --------------------------------------------------------------------------- loss or theft


@dataclass(frozen=True, slots=True)
class LossDeadlines:
    discovered_on: date
    notice_due_on: date
    form_106_due_on: date

    def to_dict(self) -> dict[str, str]:
        return {"discovered_on": self.discovered_on.isoformat(),
                "notice_due_on": self.notice_due_on.isoformat(),
                "form_106_due_on": self.form_106_due_on.isoformat()}


def add_business_days(start: date, days: int, holidays: Container[date]) -> date:
    """The ``days``-th business day (Monday to Friday, not a holiday) after ``start``."""
    current, left = start, days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            left -= 1
    return current


def loss_deadlines(discovered_on: date, *, holidays: Container[date],
                   rules: StockRules) -> LossDeadlines:
    """Written notice within one business day of discovery; DEA Form 106 within 45
    calendar days [CFR-1301.76b]. ``holidays`` are the federal holidays."""
    return LossDeadlines(
        discovered_on,
        add_business_days(discovered_on, rules.notice_business_days, holidays),
        discovered_on + timedelta(days=rules.form_106_calendar_days),
    )


def check_loss_type(loss_type: str, rules: StockRules) -> str:
    if loss_type not in rules.loss_types:
        raise UsageError("loss_type", f"choose one of: {', '.join(rules.loss_types)}")
    return loss_type


# --------------------------------------------------------------------------- inventories


@dataclass(frozen=True, slots=True)
class ContainerState:
    """One container as an inventory sees it."""

    product: str
    ndc: str
    form: str
    strength_mg_per_ml: Fraction
    container_volume_ml: Fraction
    lot: str
    expires_on: date
    balance_mg: Fraction

    @property
    def content_mg(self) -> Fraction:
        return units.amount_mg(self.container_volume_ml, self.strength_mg_per_ml)

    @property
    def sealed(self) -> bool:
        return self.balance_mg == self.content_mg


@dataclass(frozen=True, slots=True)
class InventoryLine:
    """One inventory line: a product and lot at one moment [CFR-1304.11]."""

    product: str
    ndc: str
    form: str
    strength_mg_per_ml: Fraction
    container_volume_ml: Fraction
    lot: str
    expires_on: date
    expired: bool
    full_containers: int
    opened_containers: int
    opened_ml: Fraction
    total_mg: Fraction

    @property
    def total_ml(self) -> Fraction:
        return units.volume_ml(self.total_mg, self.strength_mg_per_ml)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product, "ndc": self.ndc, "form": self.form,
            "strength_mg_per_ml": str(self.strength_mg_per_ml),
            "container_volume_ml": str(self.container_volume_ml), "lot": self.lot,
            "expires_on": self.expires_on.isoformat(), "expired": self.expired,
            "full_containers": self.full_containers,
            "opened_containers": self.opened_containers, "opened_ml": str(self.opened_ml),
            "total_mg": str(self.total_mg),
        }


def inventory_lines(containers: Iterable[ContainerState], *, on: date) -> list[InventoryLine]:
    """Group containers with stock into lines per product and lot: full containers are
    counted, opened ones estimated by volume (allowed for Schedule III–V); expired stock
    awaiting destruction is listed and marked [CFR-1304.11]."""
    groups: dict[tuple[str, str, str], list[ContainerState]] = {}
    for c in containers:
        if c.balance_mg > 0:
            groups.setdefault((c.product, c.ndc, c.lot), []).append(c)
    lines = []
    for (product, ndc, lot), items in sorted(groups.items()):
        first = items[0]
        opened = [c for c in items if not c.sealed]
        lines.append(InventoryLine(
            product=product, ndc=ndc, form=first.form,
            strength_mg_per_ml=first.strength_mg_per_ml,
            container_volume_ml=first.container_volume_ml, lot=lot,
            expires_on=first.expires_on, expired=on > first.expires_on,
            full_containers=len(items) - len(opened), opened_containers=len(opened),
            opened_ml=sum((units.volume_ml(c.balance_mg, c.strength_mg_per_ml)
                           for c in opened), Fraction(0)),
            total_mg=sum((c.balance_mg for c in items), Fraction(0)),
        ))
    return lines


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def biennial_due(last_inventory_on: date | None, rules: StockRules) -> date | None:
    """The latest date the next biennial inventory may be taken [CFR-1304.11]."""
    if last_inventory_on is None:
        return None
    return add_years(last_inventory_on, rules.biennial_interval_years)


def retention_years(site_years: int | None, rules: StockRules) -> int:
    """How long the site keeps its records: the federal minimum, or more where the site's
    state says so [CFR-1304.04]; never less."""
    if site_years is None:
        return rules.retention_years
    if site_years < rules.retention_years:
        raise UsageError("retention_years", f"cannot be less than the federal "
                                            f"{rules.retention_years} years")
    return site_years


# --------------------------------------------------------------------------- the chain

GENESIS_HASH = "0" * 64


def ledger_hash(prev_hash: str, content: Sequence[Any], key: bytes) -> str:
    """HMAC-SHA256, under a key the database does not hold, of the previous hash and the
    entry's content (in a fixed field order): whoever holds only the database cannot
    rewrite an entry and re-chain the ones after it."""
    payload = json.dumps(["stock-ledger", prev_hash, list(content)], sort_keys=True,
                         separators=(",", ":"), ensure_ascii=False, default=str)
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    seq: int
    content: tuple[Any, ...]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    problem: str


def verify_ledger(entries: Iterable[ChainEntry], *, tip: tuple[int, str] | None,
                  key: bytes) -> list[ChainBreak]:
    """Every break in one site's chain: an altered, removed, inserted or reordered entry,
    or removed newest entries (the stored ``tip`` no longer matches the last entry)."""
    problems: list[ChainBreak] = []
    expected_prev, expected_seq = GENESIS_HASH, 1
    last: tuple[int, str] | None = None
    for e in entries:
        if e.seq != expected_seq:
            kind = "missing or reordered" if e.seq > expected_seq else "duplicated or reordered"
            problems.append(ChainBreak(e.seq, f"expected entry {expected_seq}: {kind}"))
        if e.prev_hash != expected_prev:
            problems.append(ChainBreak(e.seq, "does not follow the entry before it"))
        if not hmac.compare_digest(ledger_hash(e.prev_hash, e.content, key), e.hash):
            problems.append(ChainBreak(e.seq, "content altered (hash mismatch)"))
        expected_prev, expected_seq = e.hash, e.seq + 1
        last = (e.seq, e.hash)
    if tip is not None and tip[0] > 0 and last != tip:
        problems.append(ChainBreak(tip[0], "the newest entries were removed (tip mismatch)"))
    return problems


# --------------------------------------------------------------------------- registrations


def check_dea_number(text: str, *, field: str = "dea_number") -> str:
    """A DEA registration number: two letters and seven digits whose last digit is the
    check digit ((d1 + d3 + d5) + 2 × (d2 + d4 + d6), last digit)."""
    value = text.strip().upper()
    if len(value) != 9 or not value[:2].isalpha() or not value[2:].isdigit():
        raise UsageError(field, "a DEA number is two letters and seven digits, e.g. AB1234563")
    d = [int(c) for c in value[2:]]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    if check != d[6]:
        raise UsageError(field, f"{value} fails the DEA check digit; check for a typing error")
    return value
