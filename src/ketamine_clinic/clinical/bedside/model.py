"""What the bedside core reads and returns: entries, the signed order, the day's facts,
and the outcome of a command. Plain frozen values; nothing here reads a clock or a
database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical.allergies import AllergyRecord
from ketamine_clinic.clinical.bedside.words import num
from ketamine_clinic.clinical.limit_checks import Acceptance, Override
from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.session import SessionState


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored timeline entry. ``corrects`` names the entry it replaces (a retraction
    has kind ``entered_in_error``)."""

    id: int
    kind: str
    at: datetime
    payload: Mapping[str, Any]
    corrects: int | None = None
    reason: str = ""
    by: str = ""
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MedicationLine:
    """One drug of the signed order other than the ketamine infusion.

    ``kind`` is ``premedication`` or ``rescue``; ``max_doses`` the most doses per
    session; ``min_interval`` the least time between two doses (None: no interval).
    """

    drug: str
    dose: Fraction
    unit: str
    route: str
    kind: str
    indication: str = ""
    max_doses: int = 1
    min_interval: timedelta | None = None
    source: str = ""

    @property
    def label(self) -> str:
        return f"{self.drug} {num(self.dose, 2)} {self.unit} {self.route}"


@dataclass(frozen=True)
class SignedOrder:
    """What the bedside needs from the signed, verified order."""

    order_id: int
    verified: bool
    weight_kg: Fraction
    concentration_mg_per_ml: Fraction
    planned_duration: timedelta
    max_rate_mg_per_h: Fraction
    titration_rates_mg_per_h: tuple[Fraction, ...]
    order_limits: tuple[Limit, ...]
    signed_overrides: tuple[Override, ...]
    lines: tuple[MedicationLine, ...]
    signed_by: str = ""

    def line(self, drug: str) -> MedicationLine | None:
        return next((ln for ln in self.lines if ln.drug == drug.strip().lower()), None)


@dataclass(frozen=True, slots=True)
class TestResult:
    """A test on record: ``test`` is ``ecg`` or ``liver_function_tests``."""

    __test__ = False  # not a pytest test class

    test: str
    on: date
    in_range: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class StoredAlarm:
    """An alarm already raised for this session."""

    key: str
    kind: str
    message: str
    raised_at: datetime
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class RecordHold:
    """Another record's reason the session may not close yet, gathered by the shell: for
    example the controlled-substance record, whose ketamine drawn for the session is not
    yet accounted for. ``code`` is the gate item's code, ``message`` the sentence shown."""

    code: str
    message: str


@dataclass(frozen=True)
class DayFacts:
    """The patient's facts on the day, gathered by the web layer.

    screening_problem
        ``None`` when a current screening lets the patient be treated; else why not.
    screening_conditions
        Ids of the screening rules of severity "condition" the current screening set.
    may_be_pregnant
        The protocol's pregnancy rule applies to this patient (sex and age).
    pregnancy_today
        A pregnancy status recorded in the registry today, if any.
    previous_sessions
        The days of this series' earlier sessions that reached the infusion.
    record_holds
        What other records hold against closing the session (judged by the discharge
        gate; never overridable: a physician cannot sign away a controlled-substance
        record).
    """

    consent_on_file: bool
    screening_problem: str | None
    screening_conditions: tuple[str, ...] = ()
    may_be_pregnant: bool = False
    pregnancy_today: str | None = None
    allergies: tuple[AllergyRecord, ...] = ()
    tests: tuple[TestResult, ...] = ()
    previous_sessions: tuple[date, ...] = ()
    series_given_mg: Fraction = Fraction(0)
    today: date | None = None
    time_zone: str = "UTC"
    record_holds: tuple[RecordHold, ...] = ()


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry the shell must store, as the core decided it."""

    kind: str
    at: datetime
    payload: Mapping[str, Any]
    corrects: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NewAlarm:
    """An alarm to raise: ``key`` identifies it while it is open (one per key)."""

    key: str
    kind: str
    message: str
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """The command is allowed: store ``entries`` and ``alarms``; the session is then in
    ``state``. ``acceptance`` holds the rate check's limit decisions to keep."""

    entries: tuple[NewEntry, ...]
    alarms: tuple[NewAlarm, ...] = ()
    state: SessionState | None = None
    acceptance: Acceptance | None = None

    @property
    def accepted(self) -> bool:
        return True


@dataclass(frozen=True)
class Refused:
    """The command is not allowed: ``reasons`` are sentences for the clinician;
    ``field`` the input they are about. Limit decisions are kept for review."""

    reasons: tuple[str, ...]
    field: str = ""
    acceptance: Acceptance | None = None
    codes: tuple[str, ...] = ()  # the unmet gate items, when a gate refused

    @property
    def accepted(self) -> bool:
        return False

    @property
    def message(self) -> str:
        return " ".join(self.reasons)
