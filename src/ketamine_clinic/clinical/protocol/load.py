"""Reading a protocol: the loader of the TOML format.

Loading is two steps. ``msgspec`` converts the parsed TOML into the typed Structs of
:mod:`.format`, which checks the shape (tables, keys, types, fixed choices, no unknown
key); :mod:`.shape` translates its error into the author's terms (the key path and a
plain problem: "is required", "must be a whole number, got 'one'"). The loader then
checks what depends on other keys or on reference data (the unit each key admits,
sources, limits inside limits, screening rule parameters, the protocol's own defaults
inside its hard limits) and builds the model (:mod:`.model`), every number an exact
:class:`~fractions.Fraction`.

Why msgspec rather than hand-written checks: the format is declared once, as types, and
the same declaration gives the published JSON Schema (``docs/protocol-format.schema.json``)
that an editor uses to complete and check a protocol while it is written; the hand-written
table reader it replaces (key bookkeeping, type and choice checks per key) is gone.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Sequence
from fractions import Fraction
from typing import NoReturn

from msgspec import UNSET, UnsetType

from ketamine_clinic.clinical.limit_checks import KNOWN_QUANTITIES
from ketamine_clinic.clinical.limits import Limit, LimitKind
from ketamine_clinic.clinical.monitoring import VITAL_NAMES, VitalThreshold
from ketamine_clinic.clinical.protocol import format as fmt
from ketamine_clinic.clinical.protocol.model import (
    Choice,
    Dosing,
    DosingBasis,
    Drug,
    DrugForm,
    Medication,
    Monitoring,
    Note,
    Protocol,
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
from ketamine_clinic.clinical.protocol.shape import read_shape
from ketamine_clinic.clinical.protocol.sources import (
    _discharge_scores,
    condition_vocabulary,
    source_problem,
)
from ketamine_clinic.clinical.scales import scales
from ketamine_clinic.clinical.units import exact
from ketamine_clinic.errors import UsageError

__all__ = ["FORMAT", "load_protocol_text"]

# The format version this loader reads (``format = 1`` at the top of every file).
FORMAT = 1

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# --------------------------------------------------------------------------- meaning


class _At:
    """Where a section is in the file, for errors: ``<origin>:<key path>``."""

    def __init__(self, origin: str, path: str = "") -> None:
        self.origin = origin
        self.path = path

    def at(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def sub(self, key: str | int) -> _At:
        return _At(self.origin, self.at(key))

    def fail(self, key: str | int, problem: str) -> NoReturn:
        where = self.at(key) if key != "" else self.path
        raise UsageError(f"{self.origin}:{where}", problem)

    def source(self, source: str, key: str = "source") -> str:
        problem = source_problem(source)
        if problem:
            self.fail(key, problem)
        return source

    def number(self, key: str, value: int | float) -> Fraction:
        return exact(value, field=f"{self.origin}:{self.at(key)}")

    def quantity(self, key: str, q: fmt.QuantityEntry, unit: str | Sequence[str], *,
                 positive: bool = True, integer: bool = False) -> Quantity:
        units = (unit,) if isinstance(unit, str) else tuple(unit)
        here = self.sub(key)
        value = here.number("value", q.value)
        if integer and value.denominator != 1:
            here.fail("value", f"must be a whole number, got {q.value!r}")
        if positive and value <= 0:
            here.fail("value", f"must be greater than zero, got {q.value!r}")
        if not positive and value < 0:
            here.fail("value", f"must not be negative, got {q.value!r}")
        if q.unit is UNSET and len(units) != 1:
            here.fail("unit", "is required")
        written = units[0] if q.unit is UNSET else q.unit
        if written not in units:
            here.fail("unit", f"must be {' or '.join(units)}, got {written!r}")
        return Quantity(value, written, here.source(q.source), q.note)

    def optional(self, key: str, q: fmt.QuantityEntry | UnsetType, unit: str | Sequence[str],
                 **kw: bool) -> Quantity | None:
        return None if q is UNSET else self.quantity(key, q, unit, **kw)

    def quantities(self, key: str, q: fmt.ValuesEntry, unit: str) -> tuple[Quantity, ...]:
        here = self.sub(key)
        written = unit if q.unit is UNSET else q.unit
        if written != unit:
            here.fail("unit", f"must be {unit}, got {written!r}")
        source = here.source(q.source)
        out = []
        for i, n in enumerate(q.values):
            if n <= 0:
                here.fail(f"values[{i}]", f"must be a number greater than zero, got {n!r}")
            out.append(Quantity(here.number(f"values[{i}]", n), unit, source, q.note))
        if len({x.value for x in out}) != len(out):
            here.fail("values", "lists a value twice")
        return tuple(out)

    def choice(self, key: str, c: fmt.ChoiceEntry, choices: Sequence[str]) -> Choice:
        here = self.sub(key)
        if choices and c.value not in choices:
            here.fail("value", f"must be one of {', '.join(choices)}; got {c.value!r}")
        return Choice(c.value, here.source(c.source), c.note)

    def one_of(self, key: str, value: str, choices: Sequence[str]) -> str:
        if value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value


def _bound(value: int | float | UnsetType) -> Fraction | None:
    return None if value is UNSET else exact(value, field="bound")


def _number(value: Fraction) -> str:
    return f"{float(value):g}"


def _drug(at: _At, d: fmt.DrugSection) -> Drug:
    return Drug(
        form=at.choice("form", d.form, [f.value for f in DrugForm]),
        bag_concentrations_mg_per_ml=at.quantities("bag_concentrations_mg_per_ml",
                                                   d.bag_concentrations_mg_per_ml, "mg/mL"),
        vial_strengths_mg_per_ml=at.quantities("vial_strengths_mg_per_ml",
                                               d.vial_strengths_mg_per_ml, "mg/mL"),
    )


def _medications(at: _At, entries: Sequence[fmt.MedicationEntry]) -> tuple[Medication, ...]:
    out = []
    for i, e in enumerate(entries):
        m = at.sub(i)
        med = Medication(
            drug=e.drug,
            dose=m.quantity("dose", e.dose, ("mg", "mg/kg", "microgram")),
            route=e.route,
            timing=e.timing,
            indication=e.indication,
            times=m.optional("times", e.times, "doses", integer=True),
            min_interval_min=m.optional("min_interval_min", e.min_interval_min, "min"),
        )
        if med.drug != med.drug.lower():
            m.fail("drug", "generic name in lower case, please")
        if not (med.timing or med.indication):
            m.fail("timing", "say when it is given (timing) or why (indication)")
        out.append(med)
    return tuple(out)


def _dosing(d: _At, e: fmt.DosingSection) -> Dosing:
    basis = d.choice("basis", e.basis, [b.value for b in DosingBasis])
    unit = DosingBasis(basis.value).rate_unit
    dosing = Dosing(
        basis=basis,
        start_rate=d.quantity("start_rate", e.start_rate, unit),
        max_rate=d.quantity("max_rate", e.max_rate, unit),
        usual_rate=d.quantity("usual_rate", e.usual_rate, unit),
        titration_step=d.optional("titration_step", e.titration_step, unit),
        min_step_interval_min=d.optional("min_step_interval_min", e.min_step_interval_min,
                                         "min"),
        planned_duration_min=d.quantity("planned_duration_min", e.planned_duration_min, "min"),
        weight_rule=d.choice("weight_rule", e.weight_rule, [w.value for w in WeightRule]),
        max_weight_age_days=d.quantity("max_weight_age_days", e.max_weight_age_days, "d",
                                       positive=False, integer=True),
        obesity_threshold_ratio=d.optional("obesity_threshold_ratio",
                                           e.obesity_threshold_ratio, "ratio"),
        bolus_mg_per_kg=d.optional("bolus_mg_per_kg", e.bolus_mg_per_kg, "mg/kg"),
        rate_cap_mg_per_h=d.optional("rate_cap_mg_per_h", e.rate_cap_mg_per_h, "mg/h"),
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
    return dosing


def _series(s: _At, e: fmt.SeriesSection) -> Series:
    return Series(
        sessions=s.quantity("sessions", e.sessions, "sessions", integer=True),
        spacing_days=s.quantity("spacing_days", e.spacing_days, "d", integer=True),
        min_days_between_series=s.optional("min_days_between_series",
                                           e.min_days_between_series, "d", integer=True),
    )


def _limits(at: _At, entries: Sequence[fmt.LimitEntry]) -> tuple[Limit, ...]:
    out: list[Limit] = []
    where: dict[tuple[str, LimitKind], str] = {}
    for i, e in enumerate(entries):
        lt = at.sub(i)
        quantity = lt.one_of("quantity", e.quantity, sorted(KNOWN_QUANTITIES))
        lower, upper = _bound(e.lower), _bound(e.upper)
        limit = Limit(quantity, e.kind, lower, upper, lt.source(e.source))
        if lower is None and upper is None:
            lt.fail("", "a limit needs a lower or an upper bound")
        if lower is not None and upper is not None and lower >= upper:
            lt.fail("lower", f"must be below upper ({_number(lower)} ≥ {_number(upper)})")
        if (quantity, e.kind) in where:
            lt.fail("quantity", f"a {e.kind.value} limit on {quantity} is already at "
                    f"{where[(quantity, e.kind)]}")
        where[(quantity, e.kind)] = lt.path
        out.append(limit)
    by = {(lim.quantity, lim.kind): lim for lim in out}
    for (quantity, kind), soft in by.items():
        hard = by.get((quantity, LimitKind.HARD))
        if kind is not LimitKind.SOFT or hard is None:
            continue
        # A soft limit outside its hard limit could never fire first: a data error.
        top = _At(at.origin, where[(quantity, kind)])
        if hard.upper is not None and (soft.upper is None or soft.upper > hard.upper):
            top.fail("", f"soft upper on {quantity} is above the hard upper")
        if hard.lower is not None and (soft.lower is None or soft.lower < hard.lower):
            top.fail("", f"soft lower on {quantity} is below the hard lower")
    return tuple(out)


def _thresholds(at: _At, entries: Sequence[fmt.AlarmEntry | fmt.StartLimitEntry], what: str,
                *, once: bool) -> tuple[VitalThreshold, ...]:
    out = []
    seen: set[str] = set()
    for i, e in enumerate(entries):
        a = at.sub(i)
        vital = a.one_of("vital", e.vital, VITAL_NAMES)
        if once and vital in seen:
            a.fail("vital", f"{vital} has two alarm entries")
        seen.add(vital)
        low = None if e.low is UNSET else float(e.low)
        high = None if e.high is UNSET else float(e.high)
        if low is None and high is None:
            a.fail("", f"{what} needs low or high")
        try:
            out.append(VitalThreshold(vital, low, high, a.source(e.source)))
        except UsageError as exc:
            a.fail("low", exc.problem)
    return tuple(out)


def _monitoring(m: _At, e: fmt.MonitoringSection) -> Monitoring:
    interval = m.quantity("vitals_interval_min", e.vitals_interval_min, "min")
    continuous = m.choice("continuous", e.continuous, ())
    alarms = _thresholds(m.sub("alarm"), e.alarm, "an alarm", once=True)
    start_limits = _thresholds(m.sub("start_limit"), e.start_limit, "a start limit",
                               once=False)
    rises = []
    for i, r in enumerate(e.rise_alarm):
        a = m.sub("rise_alarm").sub(i)
        vital = a.one_of("vital", r.vital, VITAL_NAMES)
        percent = a.quantity("percent", r.percent, "%")
        rises.append(RiseAlarm(vital, percent.value, percent.source))
    return Monitoring(interval, continuous, alarms, start_limits, tuple(rises))


def _score_range(at: _At, key: str, scale: str) -> tuple[int, int]:
    found = scales().get(scale)
    if found is None:
        at.fail(key, f"unknown scale {scale!r} (known: {', '.join(sorted(scales()))})")
    return found.minimum, found.maximum


def _sedation(s: _At, e: fmt.SedationSection) -> Sedation:
    known = [k for k, sc in scales().items() if sc.kind == "sedation"]
    scale = s.choice("scale", e.scale, known)
    stop = s.optional("stop_titration_below", e.stop_titration_below, "score", integer=True)
    low, high = _score_range(s, "scale", scale.value)
    if stop is not None and not low < stop.value <= high:
        s.fail("stop_titration_below", f"must be within {low + 1}..{high} on {scale.value}")
    alarm = s.optional("alarm_at_or_below", e.alarm_at_or_below, "score", integer=True,
                       positive=False)
    if alarm is not None and not low <= alarm.value < high:
        s.fail("alarm_at_or_below", f"must be within {low}..{high - 1} on {scale.value}")
    return Sedation(scale, stop, alarm)


def _titration_target(tt: _At, e: fmt.TitrationTargetSection) -> TitrationTarget:
    lo, hi = _score_range(tt, "scale", e.scale)
    for key, value in (("low", e.low), ("high", e.high)):
        if value is not UNSET and not lo <= value <= hi:
            tt.fail(key, f"must be a whole score within {lo}..{hi}, got {value!r}")
    high = None if e.high is UNSET else e.high
    if high is not None and high < e.low:
        tt.fail("high", "must not be below low")
    return TitrationTarget(e.scale, e.low, high, tt.source(e.source), e.note)


def _recovery(r: _At, e: fmt.RecoverySection) -> Recovery:
    scores = _discharge_scores()
    rec = Recovery(
        min_observation_min=r.quantity("min_observation_min", e.min_observation_min, "min"),
        assessment_interval_min=r.quantity("assessment_interval_min",
                                           e.assessment_interval_min, "min"),
        discharge_score=r.choice("discharge_score", e.discharge_score, sorted(scores)),
        discharge_threshold=r.quantity("discharge_threshold", e.discharge_threshold, "points",
                                       integer=True),
        home_score=(None if e.home_score is UNSET
                    else r.choice("home_score", e.home_score, sorted(scores))),
        home_threshold=r.optional("home_threshold", e.home_threshold, "points", integer=True),
        score_max_age_min=r.optional("score_max_age_min", e.score_max_age_min, "min"),
        back_to_baseline=(None if e.back_to_baseline is UNSET
                          else r.choice("back_to_baseline", e.back_to_baseline,
                                        _BASELINE_CHOICES)),
    )
    top = scores[rec.discharge_score.value]
    if rec.discharge_threshold.value > top:
        r.fail("discharge_threshold", f"is above the score's maximum ({top})")
    if (rec.home_score is None) != (rec.home_threshold is None):
        r.fail("home_score", "give home_score and home_threshold together")
    if rec.home_score is not None and rec.home_threshold is not None \
            and rec.home_threshold.value > scores[rec.home_score.value]:
        r.fail("home_threshold", f"is above the score's maximum ({scores[rec.home_score.value]})")
    return rec


_BASELINE_CHOICES = ("sedation", "dissociation", "sedation, dissociation")


def _tests_before_treatment(at: _At, entries: Sequence[fmt.TestEntry]
                            ) -> tuple[TestRequirement, ...]:
    out = []
    for i, e in enumerate(entries):
        r = at.sub(i)
        out.append(TestRequirement(
            test=e.test,
            screening_rules=tuple(e.screening_rules),
            valid_days=r.quantity("valid_days", e.valid_days, "d"),
            recheck_every_sessions=r.optional("recheck_every_sessions",
                                              e.recheck_every_sessions, "sessions",
                                              integer=True),
            source=r.source(e.source),
        ))
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
_RULE_PARAMETERS = ("threshold_years", "conditions", "fact", "accept", "drugs")


def _rule(r: _At, e: fmt.RuleEntry) -> ScreeningRule:
    if not _ID_RE.match(e.id):
        r.fail("id", "use lower-case letters, digits and underscores, starting with a letter")
    needs = _RULE_NEEDS[e.kind]
    for param in _RULE_PARAMETERS:
        given = getattr(e, param) is not UNSET
        if given and param not in needs:
            r.fail(param, f"is not a parameter of a {e.kind.value} rule")
        if not given and param in needs:
            r.fail(param, "is required")
    conditions = () if e.conditions is UNSET else tuple(e.conditions)
    if "conditions" in needs:
        if not conditions:
            r.fail("conditions", "must list at least one condition id")
        vocabulary = condition_vocabulary()
        for i, cid in enumerate(conditions):
            if cid not in vocabulary:
                r.fail(f"conditions[{i}]", f"unknown condition id {cid!r} "
                       "(see reference/conditions.toml)")
    drugs = () if e.drugs is UNSET else tuple(e.drugs)
    if "drugs" in needs:
        from ketamine_clinic.clinical.drugs import drug_dictionary  # drugs.py imports this

        if not drugs:
            r.fail("drugs", "must list at least one drug (a generic name of drugs.toml)")
        for i, generic in enumerate(drugs):
            if generic not in drug_dictionary():
                r.fail(f"drugs[{i}]", f"{generic!r} is not a generic name in "
                       "reference/drugs.toml")
    rule = ScreeningRule(
        id=e.id,
        kind=e.kind,
        severity=e.severity,
        when_unknown=e.when_unknown,
        message=e.message,
        source=r.source(e.source),
        conditions=conditions,
        threshold_years=r.optional("threshold_years", e.threshold_years, "years"),
        fact="" if e.fact is UNSET else e.fact,
        accept=() if e.accept is UNSET else tuple(e.accept),
        drugs=drugs,
    )
    try:
        rule.message.format(threshold="", conditions="")
    except (KeyError, IndexError, ValueError) as exc:
        r.fail("message", f"may use only {{threshold}} and {{conditions}} ({exc})")
    if rule.when_unknown is Severity.NOTE:
        # An unknown fact must never pass silently.
        r.fail("when_unknown", "must be exclude, review or condition, not note")
    return rule


def _screening(s: _At, e: fmt.ScreeningSection) -> ScreeningRules:
    validity = s.quantity("validity_days", e.validity_days, "d", integer=True)
    rules = []
    ids: set[str] = set()
    for i, entry in enumerate(e.rule):
        r = s.sub("rule").sub(i)
        rule = _rule(r, entry)
        if rule.id in ids:
            r.fail("id", f"rule id {rule.id!r} is used twice")
        ids.add(rule.id)
        rules.append(rule)
    return ScreeningRules(validity, tuple(rules))


def _notes(at: _At, entries: Sequence[fmt.NoteEntry]) -> tuple[Note, ...]:
    return tuple(Note(n.text, at.sub(i).source(n.source)) for i, n in enumerate(entries))


def _check_defaults_within_hard_limits(at: _At, dosing: Dosing, drug: Drug,
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
            over = lim.upper is not None and value > lim.upper
            under = lim.lower is not None and value < lim.lower
            if over or under:
                at.fail(path, f"{float(value):g} is outside the protocol's own hard "
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

    Examples
    --------
    >>> load_protocol_text('format = 1\\nname = "x"', "mine.toml")
    Traceback (most recent call last):
    ...
    ketamine_clinic.errors.UsageError: mine.toml:version: is required
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(origin, f"not valid TOML: {exc}") from None
    t = _At(origin)
    written = data.get("format")
    if isinstance(written, int) and not isinstance(written, bool) and 1 <= written != FORMAT:
        # Before the shape: another format's keys would be reported as unknown.
        t.fail("format", f"this software reads protocol format {FORMAT}, not {written}")
    f = read_shape(data, origin)
    if not _NAME_RE.match(f.name):
        t.fail("name", "use lower-case letters, digits and hyphens (at most 64)")
    drug = _drug(t.sub("drug"), f.drug)
    premedications = _medications(t.sub("premedication"), f.premedication)
    rescue = _medications(t.sub("rescue"), f.rescue)
    dosing = _dosing(t.sub("dosing"), f.dosing)
    series = _series(t.sub("series"), f.series)
    limits = _limits(t.sub("limits"), f.limits)
    _check_defaults_within_hard_limits(t, dosing, drug, limits)
    monitoring = _monitoring(t.sub("monitoring"), f.monitoring)
    sedation = _sedation(t.sub("sedation"), f.sedation)
    target = (None if f.titration_target is UNSET
              else _titration_target(t.sub("titration_target"), f.titration_target))
    recovery = _recovery(t.sub("recovery"), f.recovery)
    tests = _tests_before_treatment(t.sub("test_before_treatment"), f.test_before_treatment)
    screening = _screening(t.sub("screening"), f.screening)
    rule_ids = {r.id for r in screening.rules}
    for i, req in enumerate(tests):
        unknown = [r for r in req.screening_rules if r not in rule_ids]
        if unknown:
            t.fail(f"test_before_treatment[{i}].screening_rules",
                   f"{unknown[0]!r} is not a screening rule of this protocol")
    return Protocol(
        name=f.name, version=f.version, title=f.title, status=f.status, summary=f.summary,
        drug=drug, premedications=premedications, rescue_medications=rescue, dosing=dosing,
        series=series, limits=limits, monitoring=monitoring, sedation=sedation,
        titration_target=target, recovery=recovery, screening=screening,
        tests_before_treatment=tests,
        discharge_instructions=_notes(t.sub("discharge_instruction"), f.discharge_instruction),
        caveats=_notes(t.sub("caveat"), f.caveat), text=text, origin=origin,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        rows=tuple(_flatten(data, "", "")),
    )
