"""Protocols as data: the TOML format, its validating loader, flat rows and diffs.

A protocol version is identified by ``(name, version)`` and by the SHA-256 of its TOML
text. The web layer stores the text of each published version and re-parses it with
:func:`load_protocol_text`; the command line reads the versions shipped in
``ketamine_clinic/protocols/*.toml`` (:func:`shipped_protocols`, :func:`load_protocol`).

Every number in a protocol carries its source: a reference key from
``reference/references.toml`` (``"S9"``, ``"S26-label"``), or ``"clinic policy (set by
...)"``. The format is described in ``docs/protocol-format.md``; errors raised while loading
are :class:`~ketamine_clinic.errors.UsageError` whose field is ``"<origin>:<key path>"``.
"""

from __future__ import annotations

import enum
import hashlib
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any, NoReturn

from ketamine_clinic.clinical.limit_checks import KNOWN_QUANTITIES
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.monitoring import VITAL_NAMES, VitalThreshold
from ketamine_clinic.clinical.scales import scales
from ketamine_clinic.clinical.units import exact, to_float
from ketamine_clinic.errors import UsageError

__all__ = [
    "FORMAT",
    "Choice",
    "Condition",
    "DiffRow",
    "Dosing",
    "DosingBasis",
    "Drug",
    "DrugForm",
    "Medication",
    "Monitoring",
    "Note",
    "Protocol",
    "ProtocolStatus",
    "Quantity",
    "Recovery",
    "Reference",
    "Row",
    "RuleKind",
    "ScreeningRule",
    "ScreeningRules",
    "Sedation",
    "Series",
    "Severity",
    "TitrationTarget",
    "WeightRule",
    "condition_vocabulary",
    "load_protocol",
    "load_protocol_text",
    "protocol_diff",
    "protocol_rows",
    "references",
    "shipped_protocols",
    "source_keys",
    "source_problem",
]

# The format version this loader reads (``format = 1`` at the top of every file).
FORMAT = 1


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


TEST_KINDS = ("ecg", "liver_function_tests")


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


# --------------------------------------------------------------------------- reference data


def _reference_text(name: str) -> str:
    return resources.files("ketamine_clinic.reference").joinpath(name).read_text("utf-8")


@cache
def references() -> Mapping[str, Reference]:
    """Every source key with its citation (``reference/references.toml``), in file order."""
    raw = tomllib.loads(_reference_text("references.toml"))
    return {
        row["key"]: Reference(row["key"], row.get("citation", ""), tuple(row.get("urls", ())),
                              row.get("short", ""))
        for row in raw["source"]
    }


@cache
def condition_vocabulary() -> Mapping[str, Condition]:
    """The screening condition ids (``reference/conditions.toml``), in file order."""
    raw = tomllib.loads(_reference_text("conditions.toml"))
    return {
        row["id"]: Condition(row["id"], row["label"], row["question"], row["group"])
        for row in raw["condition"]
    }


@cache
def _discharge_scores() -> Mapping[str, int]:
    """Discharge score key → maximum total (sum of each item's best level)."""
    raw = tomllib.loads(_reference_text("discharge_scores.toml"))
    out = {}
    for key, score in raw["score"].items():
        out[key] = sum(max(lv["points"] for lv in item.get("levels", [{"points": 2}]))
                       for item in score["item"])
    return out


_KEY_RE = re.compile(r"(?<![\w-])(S\d+(?:-[A-Za-z]+)?|clinic-page)(?![\w-])")
_POLICY_PREFIX = "clinic policy (set by "


def source_keys(source: str) -> tuple[str, ...]:
    """The reference keys a source string cites, in order, without repeats."""
    return tuple(dict.fromkeys(_KEY_RE.findall(source)))


def source_problem(source: str) -> str | None:
    """Why ``source`` is not an acceptable source string, or ``None``."""
    text = source.strip()
    if not text:
        return "a source is required"
    unknown = [k for k in source_keys(text) if k not in references()]
    if unknown:
        return f"unknown reference key(s) {', '.join(unknown)} (see reference/references.toml)"
    if text.lower().startswith("clinic policy"):
        if not text.startswith(_POLICY_PREFIX):
            return "clinic policy must say who set it: 'clinic policy (set by ...)'"
        return None
    if not source_keys(text):
        return "name a reference key (e.g. 'S9') or 'clinic policy (set by ...)'"
    return None


# --------------------------------------------------------------------------- reading


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ROUTES = ("IV", "PO", "IM", "SC", "SL", "IN")


class _Table:
    """A TOML table being read: remembers its key path and which keys were used."""

    def __init__(self, data: Mapping[str, Any], path: str, origin: str) -> None:
        self.data = data
        self.path = path
        self.origin = origin
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> NoReturn:
        raise UsageError(f"{self.origin}:{self.at(key) if key else self.path}", problem)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.seen.add(key)
        if key not in self.data:
            self.fail(key, "is required")
        return self.data[key]

    def string(self, key: str, *, choices: Sequence[str] = (), default: str | None = None) -> str:
        if default is not None and key not in self.data:
            self.seen.add(key)
            return default
        value = self.raw(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def integer(self, key: str, *, minimum: int) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, got {value!r}")
        if value < minimum:
            self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def strings(self, key: str, *, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        if default is not None and key not in self.data:
            self.seen.add(key)
            return default
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "must be a list of strings")
        return tuple(value)

    def source(self, key: str = "source") -> str:
        value = self.string(key)
        problem = source_problem(value)
        if problem:
            self.fail(key, problem)
        return value

    def table(self, key: str) -> _Table:
        value = self.raw(key)
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return _Table(value, self.at(key), self.origin)

    def tables(self, key: str, *, required: bool = True) -> list[_Table]:
        if not required and key not in self.data:
            self.seen.add(key)
            return []
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, "must be an array of tables ([[...]])")
        return [_Table(v, f"{self.at(key)}[{i}]", self.origin) for i, v in enumerate(value)]

    def done(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            self.fail(extra[0], "unknown key (see docs/protocol-format.md)")

    # -- sourced values -------------------------------------------------------------

    def quantity(self, key: str, unit: str | Sequence[str], *, positive: bool = True,
                 integer: bool = False) -> Quantity:
        """``key = { value = N, unit = "...", source = "...", note = "..." }``."""
        units = (unit,) if isinstance(unit, str) else tuple(unit)
        t = self.table(key)
        number = t.raw("value")
        if isinstance(number, bool) or not isinstance(number, int | float):
            t.fail("value", f"must be a number, got {number!r}")
        value = exact(number, field=f"{self.origin}:{t.at('value')}")
        if integer and value.denominator != 1:
            t.fail("value", f"must be a whole number, got {number!r}")
        if positive and value <= 0:
            t.fail("value", f"must be greater than zero, got {number!r}")
        if not positive and value < 0:
            t.fail("value", f"must not be negative, got {number!r}")
        written = t.string("unit") if t.has("unit") or len(units) != 1 else units[0]
        if written not in units:
            t.fail("unit", f"must be {' or '.join(units)}, got {written!r}")
        q = Quantity(value, written, t.source(), t.string("note", default=""))
        t.done()
        return q

    def optional_quantity(self, key: str, unit: str | Sequence[str], **kw: bool
                          ) -> Quantity | None:
        if key not in self.data:
            self.seen.add(key)
            return None
        return self.quantity(key, unit, **kw)

    def quantities(self, key: str, unit: str) -> tuple[Quantity, ...]:
        """``key = { values = [a, b], unit = "...", source = "..." }``."""
        t = self.table(key)
        numbers = t.raw("values")
        if not isinstance(numbers, list) or not numbers:
            t.fail("values", "must be a non-empty list of numbers")
        written = t.string("unit", default=unit)
        if written != unit:
            t.fail("unit", f"must be {unit}, got {written!r}")
        source = t.source()
        note = t.string("note", default="")
        out = []
        for i, n in enumerate(numbers):
            if isinstance(n, bool) or not isinstance(n, int | float) or n <= 0:
                t.fail(f"values[{i}]", f"must be a number greater than zero, got {n!r}")
            out.append(Quantity(exact(n, field=t.at(f"values[{i}]")), unit, source, note))
        if len({q.value for q in out}) != len(out):
            t.fail("values", "lists a value twice")
        t.done()
        return tuple(out)

    def choice(self, key: str, choices: Sequence[str]) -> Choice:
        """``key = { value = "...", source = "..." }``."""
        t = self.table(key)
        c = Choice(t.string("value", choices=choices), t.source(), t.string("note", default=""))
        t.done()
        return c


# --------------------------------------------------------------------------- sections


def _drug(t: _Table) -> Drug:
    d = t.table("drug")
    drug = Drug(
        form=d.choice("form", [f.value for f in DrugForm]),
        bag_concentrations_mg_per_ml=d.quantities("bag_concentrations_mg_per_ml", "mg/mL"),
        vial_strengths_mg_per_ml=d.quantities("vial_strengths_mg_per_ml", "mg/mL"),
    )
    d.done()
    return drug


def _medications(t: _Table, key: str, *, required: bool) -> tuple[Medication, ...]:
    out = []
    for m in t.tables(key, required=required):
        med = Medication(
            drug=m.string("drug"),
            dose=m.quantity("dose", ("mg", "mg/kg", "microgram")),
            route=m.string("route", choices=ROUTES),
            timing=m.string("timing", default=""),
            indication=m.string("indication", default=""),
            times=m.optional_quantity("times", "doses", integer=True),
            min_interval_min=m.optional_quantity("min_interval_min", "min"),
        )
        if med.drug != med.drug.lower():
            m.fail("drug", "generic name in lower case, please")
        if not (med.timing or med.indication):
            m.fail("timing", "say when it is given (timing) or why (indication)")
        m.done()
        out.append(med)
    return tuple(out)


def _dosing(t: _Table) -> Dosing:
    d = t.table("dosing")
    basis = d.choice("basis", [b.value for b in DosingBasis])
    unit = DosingBasis(basis.value).rate_unit
    dosing = Dosing(
        basis=basis,
        start_rate=d.quantity("start_rate", unit),
        max_rate=d.quantity("max_rate", unit),
        usual_rate=d.quantity("usual_rate", unit),
        titration_step=d.optional_quantity("titration_step", unit),
        min_step_interval_min=d.optional_quantity("min_step_interval_min", "min"),
        planned_duration_min=d.quantity("planned_duration_min", "min"),
        weight_rule=d.choice("weight_rule", [w.value for w in WeightRule]),
        max_weight_age_days=d.quantity("max_weight_age_days", "d", positive=False,
                                       integer=True),
        obesity_threshold_ratio=d.optional_quantity("obesity_threshold_ratio", "ratio"),
        bolus_mg_per_kg=d.optional_quantity("bolus_mg_per_kg", "mg/kg"),
        rate_cap_mg_per_h=d.optional_quantity("rate_cap_mg_per_h", "mg/h"),
    )
    if dosing.rate_cap_mg_per_h is not None and dosing.dosing_basis is DosingBasis.FIXED:
        d.fail("rate_cap_mg_per_h", "is for weight-based protocols (a fixed-rate protocol's "
               "max_rate is already in mg/h)")
    if dosing.start_rate.value > dosing.max_rate.value:
        d.fail("start_rate", "is above max_rate")
    if dosing.usual_rate.value > dosing.max_rate.value:
        d.fail("usual_rate", "is above max_rate")
    if dosing.titration_step is None:
        if dosing.start_rate.value != dosing.max_rate.value:
            d.fail("titration_step", "is required when start_rate differs from max_rate")
    else:
        if dosing.min_step_interval_min is None:
            d.fail("min_step_interval_min", "is required with a titration_step")
        if dosing.titration_step.value > dosing.max_rate.value - dosing.start_rate.value:
            d.fail("titration_step", "is larger than the distance from start_rate to max_rate")
    if dosing.weight_basis is not WeightRule.ACTUAL and dosing.obesity_threshold_ratio is None:
        d.fail("obesity_threshold_ratio", "is required when weight_rule is not actual")
    d.done()
    return dosing


def _series(t: _Table) -> Series:
    s = t.table("series")
    series = Series(
        sessions=s.quantity("sessions", "sessions", integer=True),
        spacing_days=s.quantity("spacing_days", "d", integer=True),
        min_days_between_series=s.optional_quantity("min_days_between_series", "d",
                                                     integer=True),
    )
    s.done()
    return series


def _bound(t: _Table, key: str) -> float | None:
    if key not in t.data:
        t.seen.add(key)
        return None
    value = t.raw(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        t.fail(key, f"must be a number of at least 0, got {value!r}")
    return float(value)


def _limits(t: _Table) -> tuple[Limit, ...]:
    out: list[Limit] = []
    where: dict[tuple[str, LimitKind], str] = {}
    for lt in t.tables("limits"):
        quantity = lt.string("quantity", choices=sorted(KNOWN_QUANTITIES))
        kind = LimitKind(lt.string("kind", choices=[k.value for k in LimitKind]))
        lower, upper = _bound(lt, "lower"), _bound(lt, "upper")
        limit = Limit(quantity, kind, lower, upper, lt.source())
        lt.string("note", default="")
        lt.done()
        if lower is None and upper is None:
            lt.fail("", "a limit needs a lower or an upper bound")
        if lower is not None and upper is not None and lower >= upper:
            lt.fail("lower", f"must be below upper ({lower:g} ≥ {upper:g})")
        if (quantity, kind) in where:
            lt.fail("quantity", f"a {kind.value} limit on {quantity} is already at "
                    f"{where[(quantity, kind)]}")
        where[(quantity, kind)] = lt.path
        out.append(limit)
    by = {(lim.quantity, lim.kind): lim for lim in out}
    for (quantity, kind), soft in by.items():
        hard = by.get((quantity, LimitKind.HARD))
        if kind is not LimitKind.SOFT or hard is None:
            continue
        # A soft limit outside its hard limit could never fire first: a data error.
        if hard.upper is not None and (soft.upper is None or soft.upper > hard.upper):
            t.fail(where[(quantity, kind)], f"soft upper on {quantity} is above the hard upper")
        if hard.lower is not None and (soft.lower is None or soft.lower < hard.lower):
            t.fail(where[(quantity, kind)], f"soft lower on {quantity} is below the hard lower")
    return tuple(out)


def _monitoring(t: _Table) -> Monitoring:
    m = t.table("monitoring")
    interval = m.quantity("vitals_interval_min", "min")
    continuous = m.choice("continuous", ())
    alarms = []
    seen: set[str] = set()
    for a in m.tables("alarm"):
        vital = a.string("vital", choices=VITAL_NAMES)
        if vital in seen:
            a.fail("vital", f"{vital} has two alarm entries")
        seen.add(vital)
        low, high = _bound(a, "low"), _bound(a, "high")
        if low is None and high is None:
            a.fail("", "an alarm needs low or high")
        try:
            alarms.append(VitalThreshold(vital, low, high, a.source()))
        except UsageError as exc:
            a.fail("low", exc.problem)
        a.string("note", default="")
        a.done()
    start_limits = []
    for a in m.tables("start_limit", required=False):
        vital = a.string("vital", choices=VITAL_NAMES)
        low, high = _bound(a, "low"), _bound(a, "high")
        if low is None and high is None:
            a.fail("", "a start limit needs low or high")
        try:
            start_limits.append(VitalThreshold(vital, low, high, a.source()))
        except UsageError as exc:
            a.fail("low", exc.problem)
        a.done()
    rises = []
    for a in m.tables("rise_alarm", required=False):
        vital = a.string("vital", choices=VITAL_NAMES)
        percent = a.quantity("percent", "%")
        rises.append(RiseAlarm(vital, percent.value, percent.source))
        a.done()
    m.done()
    return Monitoring(interval, continuous, tuple(alarms), tuple(start_limits), tuple(rises))


def _score_range(t: _Table, key: str, scale: str) -> tuple[int, int]:
    found = scales().get(scale)
    if found is None:
        t.fail(key, f"unknown scale {scale!r} (known: {', '.join(sorted(scales()))})")
    return found.minimum, found.maximum


def _sedation(t: _Table) -> Sedation:
    s = t.table("sedation")
    known = [k for k, sc in scales().items() if sc.kind == "sedation"]
    scale = s.choice("scale", known)
    stop = s.optional_quantity("stop_titration_below", "score", integer=True)
    low, high = _score_range(s, "scale", scale.value)
    if stop is not None and not low < stop.value <= high:
        s.fail("stop_titration_below", f"must be within {low + 1}..{high} on {scale.value}")
    alarm = s.optional_quantity("alarm_at_or_below", "score", integer=True, positive=False)
    if alarm is not None and not low <= alarm.value < high:
        s.fail("alarm_at_or_below", f"must be within {low}..{high - 1} on {scale.value}")
    s.done()
    return Sedation(scale, stop, alarm)


def _score(t: _Table, key: str, low: int, high: int) -> int:
    value = t.raw(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        t.fail(key, f"must be a whole score within {low}..{high}, got {value!r}")
    return value


def _titration_target(t: _Table) -> TitrationTarget | None:
    if not t.has("titration_target"):
        t.seen.add("titration_target")
        return None
    tt = t.table("titration_target")
    scale = tt.string("scale")
    lo, hi = _score_range(tt, "scale", scale)
    low = _score(tt, "low", lo, hi)
    high = _score(tt, "high", lo, hi) if tt.has("high") else None
    tt.seen.add("high")
    if high is not None and high < low:
        tt.fail("high", "must not be below low")
    target = TitrationTarget(scale, low, high, tt.source(), tt.string("note", default=""))
    tt.done()
    return target


def _recovery(t: _Table) -> Recovery:
    r = t.table("recovery")
    scores = _discharge_scores()
    rec = Recovery(
        min_observation_min=r.quantity("min_observation_min", "min"),
        assessment_interval_min=r.quantity("assessment_interval_min", "min"),
        discharge_score=r.choice("discharge_score", sorted(scores)),
        discharge_threshold=r.quantity("discharge_threshold", "points", integer=True),
        home_score=r.choice("home_score", sorted(scores)) if r.has("home_score") else None,
        home_threshold=r.optional_quantity("home_threshold", "points", integer=True),
        score_max_age_min=r.optional_quantity("score_max_age_min", "min"),
        back_to_baseline=(r.choice("back_to_baseline", _BASELINE_CHOICES)
                          if r.has("back_to_baseline") else None),
    )
    r.seen.update({"home_score", "back_to_baseline"})
    top = scores[rec.discharge_score.value]
    if rec.discharge_threshold.value > top:
        r.fail("discharge_threshold", f"is above the score's maximum ({top})")
    if (rec.home_score is None) != (rec.home_threshold is None):
        r.fail("home_score", "give home_score and home_threshold together")
    if rec.home_score is not None and rec.home_threshold is not None \
            and rec.home_threshold.value > scores[rec.home_score.value]:
        r.fail("home_threshold", f"is above the score's maximum ({scores[rec.home_score.value]})")
    r.done()
    return rec


_BASELINE_CHOICES = ("sedation", "dissociation", "sedation, dissociation")


def _tests_before_treatment(t: _Table) -> tuple[TestRequirement, ...]:
    out = []
    for r in t.tables("test_before_treatment", required=False):
        out.append(TestRequirement(
            test=r.string("test", choices=TEST_KINDS),
            screening_rules=r.strings("screening_rules"),
            valid_days=r.quantity("valid_days", "d"),
            recheck_every_sessions=r.optional_quantity("recheck_every_sessions", "sessions",
                                                       integer=True),
            source=r.source(),
        ))
        r.done()
    return tuple(out)


_RULE_NEEDS: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.AGE_BELOW: ("threshold_years",),
    RuleKind.AGE_AT_OR_ABOVE: ("threshold_years",),
    RuleKind.PREGNANCY: ("threshold_years",),
    RuleKind.CONDITIONS: ("conditions",),
    RuleKind.ALWAYS: (),
    RuleKind.INDICATION: ("accept",),
    RuleKind.BUDAPEST: (),
    RuleKind.INTERACTIONS: (),
    RuleKind.FACT_KNOWN: ("fact",),
    RuleKind.ALLERGY: ("drugs",),
    RuleKind.PROTOCOL_DRUGS: (),
}
FACTS_THAT_CAN_BE_REQUIRED = ("age_years", "sex_at_birth", "weight_kg", "medications",
                              "diagnoses", "pregnant")
DIAGNOSIS_GROUPS = ("crps", "other")


def _rule(r: _Table) -> ScreeningRule:
    rule_id = r.string("id")
    if not _ID_RE.match(rule_id):
        r.fail("id", "use lower-case letters, digits and underscores, starting with a letter")
    kind = RuleKind(r.string("kind", choices=[k.value for k in RuleKind]))
    severities = [s.value for s in Severity]
    needs = _RULE_NEEDS[kind]
    for param in ("threshold_years", "conditions", "fact", "accept", "drugs"):
        if param in r.data and param not in needs:
            r.fail(param, f"is not a parameter of a {kind.value} rule")
    conditions: tuple[str, ...] = ()
    if "conditions" in needs:
        conditions = r.strings("conditions")
        if not conditions:
            r.fail("conditions", "must list at least one condition id")
        vocabulary = condition_vocabulary()
        for i, cid in enumerate(conditions):
            if cid not in vocabulary:
                r.fail(f"conditions[{i}]", f"unknown condition id {cid!r} "
                       "(see reference/conditions.toml)")
    accept: tuple[str, ...] = ()
    if "accept" in needs:
        accept = r.strings("accept")
        for i, group in enumerate(accept):
            if group not in DIAGNOSIS_GROUPS:
                r.fail(f"accept[{i}]", f"must be one of {', '.join(DIAGNOSIS_GROUPS)}")
    drugs: tuple[str, ...] = ()
    if "drugs" in needs:
        from ketamine_clinic.clinical.drugs import drug_dictionary  # drugs.py imports this

        drugs = r.strings("drugs")
        if not drugs:
            r.fail("drugs", "must list at least one drug (a generic name of drugs.toml)")
        for i, generic in enumerate(drugs):
            if generic not in drug_dictionary():
                r.fail(f"drugs[{i}]", f"{generic!r} is not a generic name in "
                       "reference/drugs.toml")
    rule = ScreeningRule(
        id=rule_id,
        kind=kind,
        severity=Severity(r.string("severity", choices=severities)),
        when_unknown=Severity(r.string("when_unknown", choices=severities, default="review")),
        message=r.string("message"),
        source=r.source(),
        conditions=conditions,
        threshold_years=r.quantity("threshold_years", "years")
        if "threshold_years" in needs else None,
        fact=r.string("fact", choices=FACTS_THAT_CAN_BE_REQUIRED) if "fact" in needs else "",
        accept=accept,
        drugs=drugs,
    )
    try:
        rule.message.format(threshold="", conditions="")
    except (KeyError, IndexError, ValueError) as exc:
        r.fail("message", f"may use only {{threshold}} and {{conditions}} ({exc})")
    if rule.when_unknown is Severity.NOTE:
        # An unknown fact must never pass silently.
        r.fail("when_unknown", "must be exclude, review or condition, not note")
    r.done()
    return rule


def _screening(t: _Table) -> ScreeningRules:
    s = t.table("screening")
    validity = s.quantity("validity_days", "d", integer=True)
    rules = []
    ids: set[str] = set()
    for r in s.tables("rule"):
        rule = _rule(r)
        if rule.id in ids:
            r.fail("id", f"rule id {rule.id!r} is used twice")
        ids.add(rule.id)
        rules.append(rule)
    s.done()
    return ScreeningRules(validity, tuple(rules))


def _notes(t: _Table, key: str, *, required: bool) -> tuple[Note, ...]:
    out = []
    for n in t.tables(key, required=required):
        out.append(Note(n.string("text"), n.source()))
        n.done()
    return tuple(out)


def _check_defaults_within_hard_limits(t: _Table, dosing: Dosing, drug: Drug,
                                       limits: Sequence[Limit]) -> None:
    """The protocol's own defaults must pass its own hard limits (same unit only)."""
    rate_quantity = ("rate_mg_per_h" if dosing.dosing_basis is DosingBasis.FIXED
                     else "rate_mg_per_kg_per_h")
    checks: list[tuple[str, str, Fraction]] = [
        ("dosing.start_rate", rate_quantity, dosing.start_rate.value),
        ("dosing.max_rate", rate_quantity, dosing.max_rate.value),
        ("dosing.usual_rate", rate_quantity, dosing.usual_rate.value),
    ]
    checks += [("drug.bag_concentrations_mg_per_ml", "concentration_mg_per_ml", q.value)
               for q in drug.bag_concentrations_mg_per_ml]
    if dosing.bolus_mg_per_kg is not None:
        checks.append(("dosing.bolus_mg_per_kg", "bolus_mg_per_kg", dosing.bolus_mg_per_kg.value))
    for path, quantity, value in checks:
        for lim in limits:
            if lim.quantity != quantity or lim.kind is not LimitKind.HARD:
                continue
            over = lim.upper is not None and value > exact(lim.upper, field=path)
            under = lim.lower is not None and value < exact(lim.lower, field=path)
            if over or under:
                raise UsageError(f"{t.origin}:{path}",
                                 f"{float(value):g} is outside the protocol's own hard "
                                 f"limit on {quantity}")


def load_protocol_text(text: str, origin: str) -> Protocol:
    """Parse and validate one protocol version from its TOML text.

    Parameters
    ----------
    text
        The TOML document (format described in ``docs/protocol-format.md``).
    origin
        Where it came from, used in error messages (a file name, ``db:clinic-standard/v3``).

    Raises
    ------
    UsageError
        With ``field = "<origin>:<key path>"`` and the problem, for any error.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(origin, f"not valid TOML: {exc}") from None
    t = _Table(data, "", origin)
    fmt = t.integer("format", minimum=1)
    if fmt != FORMAT:
        t.fail("format", f"this software reads protocol format {FORMAT}, not {fmt}")
    name = t.string("name")
    if not _NAME_RE.match(name):
        t.fail("name", "use lower-case letters, digits and hyphens (at most 64)")
    version = t.integer("version", minimum=1)
    title = t.string("title")
    status = ProtocolStatus(t.string("status", choices=[s.value for s in ProtocolStatus]))
    summary = t.string("summary", default="")
    drug = _drug(t)
    premedications = _medications(t, "premedication", required=False)
    rescue = _medications(t, "rescue", required=False)
    dosing = _dosing(t)
    series = _series(t)
    limits = _limits(t)
    _check_defaults_within_hard_limits(t, dosing, drug, limits)
    monitoring = _monitoring(t)
    sedation = _sedation(t)
    target = _titration_target(t)
    recovery = _recovery(t)
    tests = _tests_before_treatment(t)
    screening = _screening(t)
    rule_ids = {r.id for r in screening.rules}
    for i, req in enumerate(tests):
        unknown = [r for r in req.screening_rules if r not in rule_ids]
        if unknown:
            t.fail(f"test_before_treatment[{i}].screening_rules",
                   f"{unknown[0]!r} is not a screening rule of this protocol")
    instructions = _notes(t, "discharge_instruction", required=True)
    caveats = _notes(t, "caveat", required=False)
    t.done()
    return Protocol(
        name=name, version=version, title=title, status=status, summary=summary, drug=drug,
        premedications=premedications, rescue_medications=rescue, dosing=dosing,
        series=series, limits=limits, monitoring=monitoring, sedation=sedation,
        titration_target=target, recovery=recovery, screening=screening,
        tests_before_treatment=tests,
        discharge_instructions=instructions, caveats=caveats, text=text, origin=origin,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        rows=tuple(_flatten(data, "", "")),
    )


# --------------------------------------------------------------------------- shipped files


def _shipped_files() -> list[Any]:
    """The shipped protocol files (``<name>.toml`` or ``<name>.v<N>.toml``), by file name."""
    folder = resources.files("ketamine_clinic.protocols")
    return sorted((e for e in folder.iterdir() if e.name.endswith(".toml")),
                  key=lambda e: e.name)


@cache
def _shipped_versions(name: str | None) -> tuple[Protocol, ...]:
    """The shipped versions of protocol ``name`` (None: of every protocol), by name and
    version. Only the files of that name are read: one command line call needs one
    protocol, and parsing every shipped file would be most of its time."""
    found: dict[tuple[str, int], Protocol] = {}
    for entry in _shipped_files():
        if name is not None and entry.name.split(".")[0] != name:
            continue
        origin = f"protocols/{entry.name}"
        protocol = load_protocol_text(entry.read_text("utf-8"), origin)
        if entry.name.split(".")[0] != protocol.name:
            raise UsageError(f"{origin}:name", f"{protocol.name!r} does not match the file name")
        if (protocol.name, protocol.version) in found:
            raise UsageError(f"{origin}:version",
                             f"{protocol.label} is also shipped in "
                             f"{found[(protocol.name, protocol.version)].origin}")
        found[(protocol.name, protocol.version)] = protocol
    return tuple(found[k] for k in sorted(found))


def shipped_protocols() -> tuple[Protocol, ...]:
    """Every protocol version shipped in ``ketamine_clinic/protocols/``, by name and version.

    A file is ``<name>.toml`` or ``<name>.v<N>.toml``; its ``name`` key must match.
    """
    return _shipped_versions(None)


def load_protocol(name: str, version: int | None = None) -> Protocol:
    """A shipped protocol by name: the given version, or the highest non-draft one."""
    versions = list(_shipped_versions(name))
    if not versions:
        known = ", ".join(sorted({e.name.split(".")[0] for e in _shipped_files()}))
        raise UsageError("protocol", f"no shipped protocol named {name!r} (known: {known})")
    if version is None:
        usable = [p for p in versions if p.status is not ProtocolStatus.DRAFT] or versions
        return max(usable, key=lambda p: p.version)
    for p in versions:
        if p.version == version:
            return p
    have = ", ".join(str(p.version) for p in versions)
    raise UsageError("version", f"{name} has no shipped version {version} (shipped: {have})")


# --------------------------------------------------------------------------- rows and diffs

# Array-of-table entries are named by these keys, so that a diff matches "the glycopyrrolate
# premedication" rather than "premedication number 0".
_IDENTITY_KEYS = ("id", "vital", "drug")


def _identity(item: Mapping[str, Any], index: int) -> str:
    for key in _IDENTITY_KEYS:
        if isinstance(item.get(key), str):
            return str(item[key])
    if "quantity" in item and "kind" in item:
        return f"{item['quantity']}/{item['kind']}"
    return str(index)


def _scalar(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _flatten(data: Mapping[str, Any], path: str, inherited: str) -> Iterator[Row]:
    source = str(data.get("source", inherited))
    for key, value in data.items():
        here = f"{path}.{key}" if path else key
        if key in ("source", "note") and path:
            continue
        if isinstance(value, dict):
            if "value" in value or "values" in value:
                raw = value.get("value", value.get("values"))
                yield Row(here, _scalar(raw), str(value.get("unit", "")),
                          str(value.get("source", source)), str(value.get("note", "")))
            else:
                yield from _flatten(value, here, source)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                yield from _flatten(item, f"{here}[{_identity(item, i)}]", source)
        else:
            yield Row(here, _scalar(value), "", source if path else "")


def protocol_rows(protocol: Protocol) -> tuple[Row, ...]:
    """Every leaf of ``protocol`` as (key path, value, unit, source) rows, in file order."""
    return protocol.rows


def protocol_diff(old: Protocol, new: Protocol, *, include_unchanged: bool = False
                  ) -> tuple[DiffRow, ...]:
    """Key paths whose value, unit or source differ between two versions.

    Rows are in ``new``'s order, with paths only in ``old`` placed after them.
    """
    before = {row.path: row for row in old.rows}
    after = {row.path: row for row in new.rows}
    out = []
    for path, row in after.items():
        prior = before.get(path)
        if prior is None:
            out.append(DiffRow(path, "added", None, row))
        elif prior != row:
            out.append(DiffRow(path, "changed", prior, row))
        elif include_unchanged:
            out.append(DiffRow(path, "same", prior, row))
    out += [DiffRow(path, "removed", row, None) for path, row in before.items()
            if path not in after]
    return tuple(out)
