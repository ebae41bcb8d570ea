"""Reading a protocol: the validating loader of the TOML format and the versions shipped in
``ketamine_clinic/protocols/``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any, NoReturn

from ketamine_clinic.clinical.limit_checks import KNOWN_QUANTITIES
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.monitoring import VITAL_NAMES, VitalThreshold
from ketamine_clinic.clinical.protocol.model import (
    TEST_KINDS,
    Choice,
    Dosing,
    DosingBasis,
    Drug,
    DrugForm,
    Medication,
    Monitoring,
    Note,
    Protocol,
    ProtocolStatus,
    Quantity,
    Recovery,
    RiseAlarm,
    RuleKind,
    ScreeningRule,
    ScreeningRules,
    Sedation,
    Series,
    Severity,
    TestRequirement,
    TitrationTarget,
    WeightRule,
)
from ketamine_clinic.clinical.protocol.rows import _flatten
from ketamine_clinic.clinical.protocol.sources import (
    _discharge_scores,
    condition_vocabulary,
    source_problem,
)
from ketamine_clinic.clinical.scales import scales
from ketamine_clinic.clinical.units import exact
from ketamine_clinic.errors import UsageError

# --------------------------------------------------------------------------- reading


# The format version this loader reads (``format = 1`` at the top of every file).
FORMAT = 1

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
