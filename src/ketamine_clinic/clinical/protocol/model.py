"""A loaded protocol version as frozen dataclasses: the enumerations of the format and one
class per section (drug, dosing, series, monitoring, sedation, recovery, screening...).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, get_args

from ketamine_clinic.clinical.limits import Limit
from ketamine_clinic.clinical.monitoring import VitalThreshold
from ketamine_clinic.clinical.units import to_float
from ketamine_clinic.errors import UsageError


class ProtocolStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"


class DrugForm(enum.StrEnum):
    RACEMIC = "racemic_ketamine"
    ESKETAMINE = "esketamine"  # S(+)-ketamine, as in Sigtermans [S10] and KetCRPS-2 [S18]


class DosingBasis(enum.StrEnum):
    FIXED = "fixed_mg_per_h"
    WEIGHT = "weight_mg_per_kg_per_h"

    @property
    def rate_unit(self) -> str:
        """The unit every rate of such a protocol is written in (``"mg/h"``, ``"mg/kg/h"``)."""
        return "mg/h" if self is DosingBasis.FIXED else "mg/kg/h"


class WeightRule(enum.StrEnum):
    ACTUAL = "actual"
    IDEAL = "ideal"
    ADJUSTED = "adjusted"


class Severity(enum.StrEnum):
    """How a screening reason weighs on the decision (worst first).

    ``exclude`` → ``ineligible`` (the protocol's hard exclusion; no override);
    ``review`` → ``needs-physician-review`` (a physician may override with a reason);
    ``condition`` → ``eligible-with-conditions`` (something to do first, e.g. an ECG);
    ``note`` → recorded, does not change the decision.
    """

    EXCLUDE = "exclude"
    REVIEW = "review"
    CONDITION = "condition"
    NOTE = "note"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class RuleKind(enum.StrEnum):
    """What a screening rule looks at (the engine is ``clinical/screening.py``)."""

    AGE_BELOW = "age_below"  # age_years < threshold_years
    AGE_AT_OR_ABOVE = "age_at_or_above"  # age_years >= threshold_years
    PREGNANCY = "pregnancy"  # pregnant, or unknown in a patient who could be pregnant
    CONDITIONS = "conditions"  # any of the listed condition ids present
    ALWAYS = "always"  # fires for every patient (a requirement of the protocol itself)
    INDICATION = "indication"  # the diagnoses the protocol treats
    BUDAPEST = "budapest"  # CRPS confirmed by the Budapest clinical criteria
    INTERACTIONS = "interactions"  # medications against reference/interactions.toml
    FACT_KNOWN = "fact_known"  # a fact that must be recorded (e.g. weight_kg)
    ALLERGY = "allergy"  # an allergy record matches one of the listed drugs
    PROTOCOL_DRUGS = "protocol_drugs"  # premedication/rescue drugs: allergies, contraindications


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number with its unit and its source.

    Attributes
    ----------
    value
        Exact value, as written in the file.
    unit
        Unit text as written (``"mg/h"``, ``"mg/kg/h"``, ``"min"``, ``"d"``, ``"mg"``...).
    source
        Reference key(s) or ``"clinic policy (set by ...)"``.
    note
        Optional remark shown with the value (e.g. "derived: 2 mg/kg/h × 4 h").
    """

    value: Fraction
    unit: str
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"value": to_float(self.value), "unit": self.unit, "source": self.source,
                "note": self.note}


@dataclass(frozen=True, slots=True)
class Choice:
    """A non-numeric clinical choice (a dosing basis, a scale) with its source."""

    value: str
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Reference:
    key: str
    citation: str
    urls: tuple[str, ...]
    short: str = ""  # the tag shown beside a number at the bedside


@dataclass(frozen=True, slots=True)
class Condition:
    """One id of the screening condition vocabulary (``reference/conditions.toml``)."""

    id: str
    label: str
    question: str
    group: str


@dataclass(frozen=True, slots=True)
class Drug:
    """The infused drug and the products the protocol allows.

    ``bag_concentrations_mg_per_ml`` are the only bag strengths an order may use (exact
    match); ``vial_strengths_mg_per_ml`` are the stock vials the bag is made from.
    """

    form: Choice
    bag_concentrations_mg_per_ml: tuple[Quantity, ...]
    vial_strengths_mg_per_ml: tuple[Quantity, ...]

    @property
    def drug_form(self) -> DrugForm:
        return DrugForm(self.form.value)


@dataclass(frozen=True, slots=True)
class Medication:
    """A premedication or rescue medication: drug, dose, route, when and why."""

    drug: str
    dose: Quantity
    route: str
    timing: str = ""
    indication: str = ""
    times: Quantity | None = None  # how many doses per session, when more than one
    min_interval_min: Quantity | None = None  # at least this long between two doses


@dataclass(frozen=True, slots=True)
class Dosing:
    """How the ketamine rate is set; every rate is in ``basis.rate_unit``.

    ``titration_step`` is ``None`` for a fixed-rate protocol (start rate = maximum rate).
    ``usual_rate`` is the rate the 10×/0.1× wrong-unit cross-check compares against.
    """

    basis: Choice
    start_rate: Quantity
    max_rate: Quantity
    usual_rate: Quantity
    titration_step: Quantity | None
    min_step_interval_min: Quantity | None
    planned_duration_min: Quantity
    weight_rule: Choice
    max_weight_age_days: Quantity
    obesity_threshold_ratio: Quantity | None = None
    bolus_mg_per_kg: Quantity | None = None
    # A weight-based protocol's ceiling in mg/h (Schwartzman: 0.35 mg/kg/h, never more than
    # 25 mg/h): the default rates an order starts from are min(rate x weight, cap).
    rate_cap_mg_per_h: Quantity | None = None

    @property
    def dosing_basis(self) -> DosingBasis:
        return DosingBasis(self.basis.value)

    @property
    def rate_unit(self) -> str:
        return self.dosing_basis.rate_unit

    @property
    def weight_basis(self) -> WeightRule:
        return WeightRule(self.weight_rule.value)


@dataclass(frozen=True, slots=True)
class Series:
    sessions: Quantity  # sessions in one series
    spacing_days: Quantity  # days from the start of one session to the next
    min_days_between_series: Quantity | None = None


@dataclass(frozen=True, slots=True)
class RiseAlarm:
    """Alarm when a vital sign rises more than ``percent`` above the pre-infusion value."""

    vital: str
    percent: Fraction
    source: str


@dataclass(frozen=True, slots=True)
class Monitoring:
    """Monitoring during the infusion.

    ``alarms`` are the intra-infusion bounds; ``start_limits`` the bounds the pre-infusion
    vital signs must be inside before premedication or the start ("do not give if");
    ``rise_alarms`` compare each set with the pre-infusion set. Capnography is required
    when ``continuous`` lists ``etco2``: a set charted during the infusion without it alarms.
    """

    vitals_interval_min: Quantity
    continuous: Choice  # comma-separated list, e.g. "ecg, spo2, etco2"
    alarms: tuple[VitalThreshold, ...]
    start_limits: tuple[VitalThreshold, ...] = ()
    rise_alarms: tuple[RiseAlarm, ...] = ()

    @property
    def continuous_signals(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.continuous.value.split(",") if p.strip())

    @property
    def capnography_required(self) -> bool:
        return "etco2" in self.continuous_signals


@dataclass(frozen=True, slots=True)
class Sedation:
    """The sedation scale charted, and the level below which the rate is not increased.

    ``stop_titration_below`` is on ``scale``: for MOAA/S (higher is more alert) a score
    below it means deeper sedation than the protocol accepts.
    """

    scale: Choice
    stop_titration_below: Quantity | None = None
    alarm_at_or_below: Quantity | None = None  # a score this deep raises an alarm


@dataclass(frozen=True, slots=True)
class TitrationTarget:
    """The end point the rate is titrated toward: ``low ≤ score ≤ high`` on ``scale``."""

    scale: str
    low: int
    high: int | None
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Recovery:
    """Recovery and discharge.

    ``discharge_score`` is the phase-I score (leaving the chair); ``home_score`` the
    home-readiness score the discharge home rests on, taken no earlier than the minimum
    observation time after the stop and no older than ``score_max_age_min`` at discharge.
    ``back_to_baseline`` lists what must be back at the pre-infusion level
    (``sedation``, ``dissociation``).
    """

    min_observation_min: Quantity  # after the infusion stops
    assessment_interval_min: Quantity
    discharge_score: Choice  # a key of reference/discharge_scores.toml
    discharge_threshold: Quantity  # total >= threshold
    home_score: Choice | None = None
    home_threshold: Quantity | None = None
    score_max_age_min: Quantity | None = None
    back_to_baseline: Choice | None = None

    @property
    def baseline_items(self) -> tuple[str, ...]:
        if self.back_to_baseline is None:
            return ()
        return tuple(p.strip() for p in self.back_to_baseline.value.split(",") if p.strip())


TestKind = Literal["ecg", "liver_function_tests"]
TEST_KINDS: tuple[str, ...] = get_args(TestKind)


@dataclass(frozen=True, slots=True)
class TestRequirement:
    """A test that must be on record, in range, before treatment when screening set one of
    ``conditions`` (screening rule ids of severity "condition").

    ``valid_days``: how old the result may be; ``recheck_every_sessions``: a new result
    is needed after this many sessions of the series since the last one (None: once).
    """

    __test__ = False  # not a pytest test class

    test: str
    screening_rules: tuple[str, ...]
    valid_days: Quantity
    recheck_every_sessions: Quantity | None
    source: str


@dataclass(frozen=True, slots=True)
class ScreeningRule:
    """One eligibility rule. The engine (``clinical/screening.py``) reads ``kind``.

    Attributes
    ----------
    id
        Unique within the protocol; a screening reason carries it (and overrides name it).
    kind
        What the rule looks at.
    severity
        Weight when the rule fires.
    when_unknown
        Weight when a fact the rule needs is unknown (never read as absent).
    message
        Plain-language text; ``{threshold}`` and ``{conditions}`` are filled in.
    source
        Reference key(s) or clinic policy.
    conditions
        Condition ids (``conditions`` kind).
    threshold_years
        Age threshold (``age_below``, ``age_at_or_above``); childbearing-age upper bound
        (``pregnancy``).
    fact
        The fact that must be known (``fact_known``).
    accept
        Diagnosis groups the protocol treats (``indication``): ``crps``, ``other``.
    drugs
        Generic names of ``reference/drugs.toml`` (``allergy``).
    """

    id: str
    kind: RuleKind
    severity: Severity
    when_unknown: Severity
    message: str
    source: str
    conditions: tuple[str, ...] = ()
    threshold_years: Quantity | None = None
    fact: str = ""
    accept: tuple[str, ...] = ()
    drugs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScreeningRules:
    validity_days: Quantity
    rules: tuple[ScreeningRule, ...]

    def rule(self, rule_id: str) -> ScreeningRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise UsageError("rule", f"no screening rule {rule_id!r}")


@dataclass(frozen=True, slots=True)
class Note:
    """A sourced sentence: a discharge instruction or a caveat about the protocol."""

    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Row:
    """One leaf of a protocol, for the rendered page, ``protocols show`` and diffs."""

    path: str
    value: Any  # str, int, float, bool or a tuple of them
    unit: str
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"path": self.path, "value": value, "unit": self.unit, "source": self.source,
                "note": self.note}


@dataclass(frozen=True, slots=True)
class DiffRow:
    """A key path in two protocol versions: ``added``, ``removed``, ``changed`` or ``same``."""

    path: str
    change: str
    old: Row | None
    new: Row | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "change": self.change,
                "old": None if self.old is None else self.old.to_dict(),
                "new": None if self.new is None else self.new.to_dict()}


@dataclass(frozen=True, slots=True)
class Protocol:
    """One version of a protocol, as loaded and validated.

    ``origin`` says where the text came from (a file name, or ``db:<name>/v<version>``);
    ``sha256`` is the hex SHA-256 of the UTF-8 text; ``rows`` is the flat view of every
    leaf (see :func:`protocol_rows`).
    """

    name: str
    version: int
    title: str
    status: ProtocolStatus
    summary: str
    drug: Drug
    premedications: tuple[Medication, ...]
    rescue_medications: tuple[Medication, ...]
    dosing: Dosing
    series: Series
    limits: tuple[Limit, ...]
    monitoring: Monitoring
    sedation: Sedation
    titration_target: TitrationTarget | None
    recovery: Recovery
    screening: ScreeningRules
    discharge_instructions: tuple[Note, ...]
    caveats: tuple[Note, ...]
    text: str
    origin: str
    sha256: str
    rows: tuple[Row, ...]
    tests_before_treatment: tuple[TestRequirement, ...] = ()

    @property
    def ref(self) -> dict[str, Any]:
        """What a stored result records about the protocol version it used."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def limits_for(self, quantity: str) -> tuple[Limit, ...]:
        return tuple(lim for lim in self.limits if lim.quantity == quantity)
