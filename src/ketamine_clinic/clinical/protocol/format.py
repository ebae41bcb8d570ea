"""The protocol file format as typed msgspec Structs: what a protocol author writes.

These Structs fix the *shape* of a protocol file: which tables and keys exist, which are
required, their types, the fixed choices, and that no other key is allowed. ``msgspec``
converts the parsed TOML into them, and :func:`format_json_schema` is the JSON Schema of
the format (published as ``docs/protocol-format.schema.json``, for editors that complete
and check TOML against a schema). What depends on other keys or on reference data (units
per key, sources, limits inside limits, rule parameters) is checked by the loader
(:mod:`.load`), which turns these Structs into the model (:mod:`.model`).

Numbers are ``int | float`` here because TOML has both; the loader reads each exactly as a
:class:`~fractions.Fraction` of the decimal written.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from ketamine_clinic.clinical.limit_checks import KNOWN_QUANTITIES
from ketamine_clinic.clinical.limits import LimitKind
from ketamine_clinic.clinical.monitoring import VITAL_NAMES
from ketamine_clinic.clinical.protocol.model import ProtocolStatus, RuleKind, Severity, TestKind

__all__ = [
    "DIAGNOSIS_GROUPS",
    "FACTS_THAT_CAN_BE_REQUIRED",
    "ROUTES",
    "ProtocolFile",
    "format_json_schema",
]

Route = Literal["IV", "PO", "IM", "SC", "SL", "IN"]
ROUTES: tuple[str, ...] = get_args(Route)
Fact = Literal["age_years", "sex_at_birth", "weight_kg", "medications", "diagnoses", "pregnant"]
FACTS_THAT_CAN_BE_REQUIRED: tuple[str, ...] = get_args(Fact)
DiagnosisGroup = Literal["crps", "other"]
DIAGNOSIS_GROUPS: tuple[str, ...] = get_args(DiagnosisGroup)

Text = Annotated[str, Meta(pattern=r"\S", description="non-empty text")]
Source = Annotated[str, Meta(
    pattern=r"\S",
    description="reference key(s) of reference/references.toml (e.g. 'S9', 'S26-label'), "
    "or 'clinic policy (set by ...)'",
)]
Number = int | float
# Names the loader checks against software constants; listed in the schema for editors.
Vital = Annotated[str, Meta(extra_json_schema={"enum": list(VITAL_NAMES)})]
LimitQuantity = Annotated[str, Meta(extra_json_schema={"enum": sorted(KNOWN_QUANTITIES)})]
Count = Annotated[int, Meta(ge=1)]


class _Entry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A TOML table with a fixed set of keys."""


class QuantityEntry(_Entry, frozen=True, kw_only=True):
    """``{ value = N, unit = "...", source = "...", note = "..." }``: a sourced number.

    ``unit`` may be left out where the key admits one unit only; if given it must match.
    """

    value: Number
    unit: Text | UnsetType = UNSET
    source: Source
    note: Text = ""


class ValuesEntry(_Entry, frozen=True, kw_only=True):
    """``{ values = [a, b], unit = "...", source = "..." }``: sourced allowed values."""

    values: Annotated[list[Number], Meta(min_length=1)]
    unit: Text | UnsetType = UNSET
    source: Source
    note: Text = ""


class ChoiceEntry(_Entry, frozen=True, kw_only=True):
    """``{ value = "...", source = "..." }``: a sourced non-numeric choice."""

    value: Text
    source: Source
    note: Text = ""


class DrugSection(_Entry, frozen=True, kw_only=True):
    form: ChoiceEntry
    bag_concentrations_mg_per_ml: ValuesEntry
    vial_strengths_mg_per_ml: ValuesEntry


class MedicationEntry(_Entry, frozen=True, kw_only=True):
    drug: Text
    dose: QuantityEntry
    route: Route
    timing: Text = ""
    indication: Text = ""
    times: QuantityEntry | UnsetType = UNSET
    min_interval_min: QuantityEntry | UnsetType = UNSET


class DosingSection(_Entry, frozen=True, kw_only=True):
    basis: ChoiceEntry
    start_rate: QuantityEntry
    max_rate: QuantityEntry
    usual_rate: QuantityEntry
    titration_step: QuantityEntry | UnsetType = UNSET
    min_step_interval_min: QuantityEntry | UnsetType = UNSET
    planned_duration_min: QuantityEntry
    weight_rule: ChoiceEntry
    max_weight_age_days: QuantityEntry
    obesity_threshold_ratio: QuantityEntry | UnsetType = UNSET
    bolus_mg_per_kg: QuantityEntry | UnsetType = UNSET
    rate_cap_mg_per_h: QuantityEntry | UnsetType = UNSET


class SeriesSection(_Entry, frozen=True, kw_only=True):
    sessions: QuantityEntry
    spacing_days: QuantityEntry
    min_days_between_series: QuantityEntry | UnsetType = UNSET


Bound = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(ge=0)]


class LimitEntry(_Entry, frozen=True, kw_only=True):
    """A hard or soft limit (inclusive bounds in the quantity's unit)."""

    quantity: LimitQuantity
    kind: LimitKind
    lower: Bound | UnsetType = UNSET
    upper: Bound | UnsetType = UNSET
    source: Source
    note: Text = ""


class AlarmEntry(_Entry, frozen=True, kw_only=True):
    """An intra-infusion alarm on a vital sign, when strictly beyond ``low`` or ``high``."""

    vital: Vital
    low: Bound | UnsetType = UNSET
    high: Bound | UnsetType = UNSET
    source: Source
    note: Text = ""


class StartLimitEntry(_Entry, frozen=True, kw_only=True):
    """Bounds the pre-infusion vital signs must be inside before premedication or start."""

    vital: Vital
    low: Bound | UnsetType = UNSET
    high: Bound | UnsetType = UNSET
    source: Source


class RiseAlarmEntry(_Entry, frozen=True, kw_only=True):
    """An alarm when a vital sign rises more than ``percent`` above the pre-infusion set."""

    vital: Vital
    percent: QuantityEntry


class MonitoringSection(_Entry, frozen=True, kw_only=True):
    vitals_interval_min: QuantityEntry
    continuous: ChoiceEntry
    alarm: list[AlarmEntry]
    start_limit: list[StartLimitEntry] = []
    rise_alarm: list[RiseAlarmEntry] = []


class SedationSection(_Entry, frozen=True, kw_only=True):
    """``scale`` is a sedation scale of ``reference/scales.toml``."""

    scale: ChoiceEntry
    stop_titration_below: QuantityEntry | UnsetType = UNSET
    alarm_at_or_below: QuantityEntry | UnsetType = UNSET


class TitrationTargetSection(_Entry, frozen=True, kw_only=True):
    scale: Text
    low: int
    high: int | UnsetType = UNSET
    source: Source
    note: Text = ""


class RecoverySection(_Entry, frozen=True, kw_only=True):
    """Scores are keys of ``reference/discharge_scores.toml``."""

    min_observation_min: QuantityEntry
    assessment_interval_min: QuantityEntry
    discharge_score: ChoiceEntry
    discharge_threshold: QuantityEntry
    home_score: ChoiceEntry | UnsetType = UNSET
    home_threshold: QuantityEntry | UnsetType = UNSET
    score_max_age_min: QuantityEntry | UnsetType = UNSET
    back_to_baseline: ChoiceEntry | UnsetType = UNSET


class TestEntry(_Entry, frozen=True, kw_only=True):
    __test__ = False  # not a pytest test class

    test: TestKind
    screening_rules: list[str]
    valid_days: QuantityEntry
    recheck_every_sessions: QuantityEntry | UnsetType = UNSET
    source: Source


class RuleEntry(_Entry, frozen=True, kw_only=True):
    """One screening rule (``docs/screening.md``); the parameters depend on ``kind``."""

    id: Text
    kind: RuleKind
    severity: Severity
    when_unknown: Severity = Severity.REVIEW
    message: Text
    source: Source
    threshold_years: QuantityEntry | UnsetType = UNSET
    conditions: list[str] | UnsetType = UNSET
    fact: Fact | UnsetType = UNSET
    accept: list[DiagnosisGroup] | UnsetType = UNSET
    drugs: list[str] | UnsetType = UNSET


class ScreeningSection(_Entry, frozen=True, kw_only=True):
    validity_days: QuantityEntry
    rule: list[RuleEntry]


class NoteEntry(_Entry, frozen=True, kw_only=True):
    text: Text
    source: Source


class ProtocolFile(_Entry, frozen=True, kw_only=True):
    """One protocol version, as written (format described in ``docs/protocol-format.md``)."""

    format: Count
    name: Text
    version: Count
    title: Text
    status: ProtocolStatus
    summary: Text = ""
    drug: DrugSection
    premedication: list[MedicationEntry] = []
    rescue: list[MedicationEntry] = []
    dosing: DosingSection
    series: SeriesSection
    limits: list[LimitEntry]
    monitoring: MonitoringSection
    sedation: SedationSection
    titration_target: TitrationTargetSection | UnsetType = UNSET
    recovery: RecoverySection
    test_before_treatment: list[TestEntry] = []
    screening: ScreeningSection
    discharge_instruction: list[NoteEntry]
    caveat: list[NoteEntry] = []


def format_json_schema() -> dict[str, Any]:
    """The JSON Schema of the protocol format (``docs/protocol-format.schema.json``).

    >>> schema = format_json_schema()
    >>> schema["$defs"]["ProtocolFile"]["required"][:3]
    ['format', 'name', 'version']
    """
    schema = msgspec.json.schema(ProtocolFile)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ketamine-clinic protocol, format 1"
    return schema
