"""Recovery scores, the discharge gate and the no-driving time.

Scores (modified Aldrete 1995, PADSS, modified PADSS) are data in
``reference/discharge_scores.toml``, item by item with their sources. Items measured
against the pre-infusion baseline (Aldrete circulation, PADSS vital signs) and oxygen
saturation are computed here from the patient's vital signs; the others are the
clinician's observation. Deviations are computed exactly (Fractions), so a value exactly
20% from baseline lands in the band the table names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical import clock, units
from ketamine_clinic.clinical.monitoring import VitalSigns
from ketamine_clinic.clinical.session import GateItem, GateResult
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Level:
    points: int
    criterion: str


@dataclass(frozen=True, slots=True)
class Band:
    """Deviation band: applies when deviation [%] < upto (or ≤ when inclusive);
    ``upto_percent`` None is the open-ended last band."""

    points: int
    criterion: str
    upto_percent: Fraction | None
    inclusive: bool

    def holds(self, deviation_percent: Fraction) -> bool:
        if self.upto_percent is None:
            return True
        if self.inclusive:
            return deviation_percent <= self.upto_percent
        return deviation_percent < self.upto_percent


@dataclass(frozen=True, slots=True)
class ScoreItem:
    key: str
    label: str
    kind: str  # observed, baseline_deviation, oxygenation
    levels: tuple[Level, ...] = ()
    bands: tuple[Band, ...] = ()
    measures: tuple[str, ...] = ()
    required_measures: tuple[str, ...] = ()
    measures_source: str = ""
    default_points: int | None = None
    default_basis: str = ""
    room_air_above_percent: Fraction | None = None
    any_above_percent: Fraction | None = None
    pain_bands: tuple[tuple[int, int | None, str], ...] = ()  # (points, up to +NRS, criterion)

    @property
    def choices(self) -> tuple[Level, ...]:
        """Every (points, criterion) the item can take."""
        return (*self.levels, *(Level(b.points, b.criterion) for b in self.bands),
                *(Level(p, c) for p, _, c in self.pain_bands))

    def criterion(self, points: int) -> str:
        for entry in self.choices:
            if entry.points == points:
                return entry.criterion
        raise UsageError(f"observed.{self.key}", f"{points} is not a score of {self.label}")


@dataclass(frozen=True, slots=True)
class ScoreDefinition:
    key: str
    name: str
    short: str
    source: str
    threshold: int
    threshold_source: str
    items: tuple[ScoreItem, ...]
    notes: str = ""

    @property
    def maximum(self) -> int:
        return sum(max(c.points for c in i.choices) for i in self.items)


def _item(raw: Mapping[str, Any]) -> ScoreItem:
    def pct(name: str) -> Fraction | None:
        return None if name not in raw else units.exact(raw[name], field=name)

    return ScoreItem(
        key=raw["key"],
        label=raw["label"],
        kind=raw["kind"],
        levels=tuple(Level(int(lv["points"]), lv["criterion"]) for lv in raw.get("levels", ())),
        bands=tuple(
            Band(
                int(b["points"]),
                b["criterion"],
                None if "upto_percent" not in b else units.exact(b["upto_percent"], field="band"),
                bool(b.get("inclusive", False)),
            )
            for b in raw.get("bands", ())
        ),
        measures=tuple(raw.get("measures", ())),
        required_measures=tuple(raw.get("required_measures", ())),
        measures_source=raw.get("measures_source", ""),
        default_points=raw.get("default_points"),
        default_basis=raw.get("default_basis", ""),
        room_air_above_percent=pct("room_air_above_percent"),
        any_above_percent=pct("any_above_percent"),
        pain_bands=tuple(
            (int(b["points"]), None if "up_to_increase" not in b else int(b["up_to_increase"]),
             b["criterion"])
            for b in raw.get("pain_bands", ())
        ),
    )


def _data() -> Mapping[str, Any]:
    return read_toml("discharge_scores.toml")


@cache
def score_definitions() -> dict[str, ScoreDefinition]:
    """The discharge scores by variant key: ``aldrete_modified_1995``, ``padss``,
    ``padss_modified``."""
    return {
        key: ScoreDefinition(
            key=key,
            name=raw["name"],
            short=raw["short"],
            source=raw["source"],
            threshold=int(raw["threshold"]),
            threshold_source=raw["threshold_source"],
            items=tuple(_item(i) for i in raw["item"]),
            notes=raw.get("notes", ""),
        )
        for key, raw in _data()["score"].items()
    }


def second_score_key(discharge_score: str, home_score: str | None = None) -> str:
    """The score of the second recovery form: the protocol's home-readiness score, else the
    other published score (``reference/discharge_scores.toml``, ``[second_form]``).

    >>> second_score_key("aldrete_modified_1995")
    'padss'
    >>> second_score_key("aldrete_modified_1995", "padss_modified")
    'padss_modified'
    """
    if home_score:
        return home_score
    return str(_data()["second_form"][discharge_score])


def get_score_definition(key: str) -> ScoreDefinition:
    found = score_definitions().get(key)
    if found is None:
        known = ", ".join(sorted(score_definitions()))
        raise UsageError("score", f"unknown discharge score {key!r} (known: {known})")
    return found


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class ItemResult:
    """One scored item. ``basis`` is ``observed``, ``computed`` or ``default`` (the
    item's data default was used because nothing was recorded)."""

    key: str
    label: str
    points: int
    criterion: str
    basis: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "points": self.points,
            "criterion": self.criterion,
            "basis": self.basis,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class DischargeScore:
    definition: ScoreDefinition
    items: tuple[ItemResult, ...]
    threshold: int
    threshold_source: str
    assessed_at: datetime
    inputs: Mapping[str, Any]

    @property
    def total(self) -> int:
        return sum(i.points for i in self.items)

    @property
    def passed(self) -> bool:
        return self.total >= self.threshold

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DischargeScore:
        """A stored score (:meth:`to_dict`) read back, exactly as it was scored."""
        return cls(
            definition=get_score_definition(str(data["score"])),
            items=tuple(ItemResult(i["key"], i["label"], int(i["points"]), i["criterion"],
                                   i["basis"], dict(i.get("detail", {})))
                        for i in data["items"]),
            threshold=int(data["threshold"]),
            threshold_source=str(data.get("threshold_source", "")),
            assessed_at=datetime.fromisoformat(str(data["assessed_at"])),
            inputs=dict(data.get("inputs", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.definition.key,
            "name": self.definition.name,
            "source": self.definition.source,
            "total": self.total,
            "maximum": self.definition.maximum,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "passed": self.passed,
            "assessed_at": self.assessed_at.isoformat(),
            "items": [i.to_dict() for i in self.items],
            "inputs": dict(self.inputs),
        }


def deviation_percent(baseline: float, now: float) -> Fraction:
    """|now − baseline| / baseline × 100 [%], exactly (values read as typed)."""
    base = units.exact(baseline, field="baseline")
    if base <= 0:
        raise UsageError("baseline", "a baseline value must be above zero")
    return abs(units.exact(now, field="value") - base) / base * 100


def _deviation_item(item: ScoreItem, baseline: VitalSigns, current: VitalSigns) -> ItemResult:
    deviations: dict[str, Fraction] = {}
    for name in item.measures:
        base, now = baseline.value(name), current.value(name)
        if base is None or now is None:
            if name in item.required_measures:
                where = "baseline" if base is None else "current"
                raise UsageError(f"{where}.{name}", f"needed for {item.label}")
            continue
        deviations[name] = deviation_percent(base, now)
    worst = max(deviations.values())
    band = next(b for b in item.bands if b.holds(worst))
    detail = {
        "deviation_percent": {k: round(float(v), 2) for k, v in deviations.items()},
        "deviation_percent_exact": {k: str(v) for k, v in deviations.items()},
        "worst_measure": max(deviations, key=lambda k: deviations[k]),
        "measures_source": item.measures_source,
    }
    return ItemResult(item.key, item.label, band.points, band.criterion, "computed", detail)


def _oxygenation_item(item: ScoreItem, current: VitalSigns) -> ItemResult:
    spo2 = current.spo2_percent
    if spo2 is None:
        raise UsageError("current.spo2_percent", f"needed for {item.label}")
    assert item.room_air_above_percent is not None
    assert item.any_above_percent is not None
    value = units.exact(spo2, field="spo2_percent")
    if not current.on_oxygen and value > item.room_air_above_percent:
        points = 2
    elif value > item.any_above_percent:
        points = 1
    else:
        points = 0
    detail = {"spo2_percent": spo2, "on_oxygen": current.on_oxygen}
    return ItemResult(item.key, item.label, points, item.criterion(points), "computed", detail)


@dataclass(frozen=True, slots=True)
class PainScores:
    """The pre-infusion pain and the pain now, on the 0-10 NRS."""

    baseline_nrs: int
    current_nrs: int


def _pain_item(item: ScoreItem, pain: PainScores | None) -> ItemResult:
    if pain is None:
        raise UsageError("pain", f"a pain score before the infusion and now is needed for "
                                 f"{item.label}")
    rise = pain.current_nrs - pain.baseline_nrs
    for points, up_to, criterion in item.pain_bands:
        if up_to is None or rise <= up_to:
            detail = {"baseline_nrs": pain.baseline_nrs, "current_nrs": pain.current_nrs}
            return ItemResult(item.key, item.label, points, criterion, "computed", detail)
    raise UsageError(f"score.{item.key}", "the pain bands do not cover every value")


def score_discharge(
    score: str,
    *,
    baseline: VitalSigns,
    current: VitalSigns,
    observed: Mapping[str, int],
    threshold: int | None = None,
    pain: PainScores | None = None,
) -> DischargeScore:
    """Score one discharge score variant, item by item.

    Parameters
    ----------
    score
        Variant key (``aldrete_modified_1995``, ``padss``, ``padss_modified``).
    baseline
        The pre-infusion vital signs (the reference for the ±% items).
    current
        The vital signs being scored now (also gives the assessment time).
    observed
        Item key → points chosen by the clinician for the observed items. An item with a
        data default (PADSS surgical bleeding: 2, IV site only) may be left out; the
        result says the default was used.
    threshold
        The protocol's pass threshold; None uses the score's published one (9 [S32][S33]).
    """
    definition = get_score_definition(score)
    known = {i.key for i in definition.items if i.kind == "observed"}
    for key in observed:
        if key not in known:
            raise UsageError(f"observed.{key}", f"{definition.short} has no observed item {key!r}")
    results = []
    for item in definition.items:
        if item.kind == "baseline_deviation":
            results.append(_deviation_item(item, baseline, current))
        elif item.kind == "oxygenation":
            results.append(_oxygenation_item(item, current))
        elif item.kind == "pain_against_baseline":
            results.append(_pain_item(item, pain))
        elif item.key in observed:
            points = observed[item.key]
            if isinstance(points, bool) or not isinstance(points, int):
                raise UsageError(f"observed.{item.key}", f"{points!r} is not a whole number")
            results.append(
                ItemResult(item.key, item.label, points, item.criterion(points), "observed")
            )
        elif item.default_points is not None:
            results.append(
                ItemResult(
                    item.key,
                    item.label,
                    item.default_points,
                    item.criterion(item.default_points),
                    "default",
                    {"default_basis": item.default_basis},
                )
            )
        else:
            raise UsageError(f"observed.{item.key}", f"{item.label} is not scored")
    if threshold is not None and not 0 <= threshold <= definition.maximum:
        raise UsageError("threshold", f"must be between 0 and {definition.maximum}")
    return DischargeScore(
        definition=definition,
        items=tuple(results),
        threshold=definition.threshold if threshold is None else threshold,
        threshold_source=(
            definition.threshold_source if threshold is None else "protocol threshold"
        ),
        assessed_at=current.at,
        inputs={
            "baseline": baseline.to_dict(),
            "current": current.to_dict(),
            "observed": dict(observed),
            "pain": None if pain is None else {"baseline_nrs": pain.baseline_nrs,
                                               "current_nrs": pain.current_nrs},
        },
    )


# --------------------------------------------------------------------------- gate


@dataclass(frozen=True, slots=True)
class Override:
    """A physician's override of one failed gate item, with the written reason.

    The web layer checks that ``physician`` holds the physician role before building it.
    """

    item: str
    physician: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"item": self.item, "physician": self.physician, "reason": self.reason}


def overridable_items() -> tuple[str, ...]:
    """Gate items a physician may override (data: ``[gate] overridable``)."""
    return tuple(_data()["gate"]["overridable"])


@dataclass(frozen=True, slots=True)
class DischargeGateInput:
    """Everything the discharge gate looks at.

    score
        The discharge score the protocol uses, latest assessment.
    infusion_stopped_at
        When the infusion stopped (None if it has not).
    now
        The time of the decision.
    minimum_observation
        The protocol's minimum observation time after the infusion stops.
    unacknowledged_alarms
        Ids (or descriptions) of alarms nobody has acknowledged yet.
    escort_name
        The responsible adult collecting the patient, by name.
    instructions_given
        Written discharge instructions (including no driving for 24 h) handed over.
    overrides
        Physician overrides of failed items, each with a reason.
    """

    score: DischargeScore
    infusion_stopped_at: datetime | None
    now: datetime
    minimum_observation: timedelta
    unacknowledged_alarms: tuple[str, ...]
    escort_name: str
    instructions_given: bool
    overrides: tuple[Override, ...] = ()
    further: tuple[GateItem, ...] = ()  # failed items the caller found (bedside rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score.to_dict(),
            "infusion_stopped_at": (
                self.infusion_stopped_at.isoformat() if self.infusion_stopped_at else None
            ),
            "now": self.now.isoformat(),
            "minimum_observation_min": self.minimum_observation / timedelta(minutes=1),
            "unacknowledged_alarms": list(self.unacknowledged_alarms),
            "escort_name": self.escort_name,
            "instructions_given": self.instructions_given,
            "overrides": [o.to_dict() for o in self.overrides],
            "further": [f.to_dict() for f in self.further],
        }


def discharge_gate(facts: DischargeGateInput) -> GateResult:
    """Exactly what still prevents discharge; an open gate has nothing missing.

    Items: ``infusion_stopped``, ``discharge_score`` (total ≥ threshold),
    ``minimum_observation`` (time since stop ≥ the protocol's minimum),
    ``alarms_acknowledged``, ``escort_confirmed`` (by name), ``instructions_given``.
    A failed item listed in ``[gate] overridable`` moves to ``overridden`` when a
    physician override with a non-blank reason names it. An override naming an item that
    cannot be overridden, or without a reason, is refused with :class:`UsageError`.
    """
    allowed = set(overridable_items())
    overrides: dict[str, Override] = {}
    for i, ov in enumerate(facts.overrides):
        where = f"overrides[{i}]"
        if ov.item not in allowed:
            raise UsageError(where, f"{ov.item!r} cannot be overridden")
        if not ov.reason.strip():
            raise UsageError(where, "an override needs a written reason")
        if not ov.physician.strip():
            raise UsageError(where, "an override needs the physician's name")
        overrides[ov.item] = ov

    failed: list[GateItem] = []
    sc = facts.score
    stopped = facts.infusion_stopped_at
    if stopped is None:
        failed.append(GateItem("infusion_stopped", "the infusion has not been stopped"))
    elif facts.now - stopped < facts.minimum_observation:
        left = facts.minimum_observation - (facts.now - stopped)
        failed.append(
            GateItem(
                "minimum_observation",
                f"observed {_minutes(facts.now - stopped)} min after the infusion stopped; "
                f"{_minutes(facts.minimum_observation)} min required "
                f"({_minutes(left)} min to go)",
            )
        )
    if not sc.passed:
        failed.append(
            GateItem(
                "discharge_score",
                f"{sc.definition.short} {sc.total}/{sc.definition.maximum}, "
                f"needs {sc.threshold} or more",
            )
        )
    if facts.unacknowledged_alarms:
        failed.append(
            GateItem(
                "alarms_acknowledged",
                f"{len(facts.unacknowledged_alarms)} alarm(s) not acknowledged: "
                + ", ".join(facts.unacknowledged_alarms),
            )
        )
    if not facts.escort_name.strip():
        failed.append(GateItem("escort_confirmed", "no escort confirmed by name"))
    if not facts.instructions_given:
        failed.append(GateItem("instructions_given", "written discharge instructions not given"))
    failed.extend(facts.further)

    missing = tuple(f for f in failed if f.code not in overrides)
    overridden = tuple(
        GateItem(
            f.code,
            f"{f.message} — overridden by {overrides[f.code].physician}: "
            f"{overrides[f.code].reason}",
        )
        for f in failed
        if f.code in overrides
    )
    return GateResult("discharge", missing, overridden, inputs=facts.to_dict())


def _minutes(span: timedelta) -> str:
    return f"{span / timedelta(minutes=1):g}"


# --------------------------------------------------------------------------- advice


@dataclass(frozen=True, slots=True)
class NoDrivingAdvice:
    infusion_end: datetime
    until: datetime
    hours: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "infusion_end": self.infusion_end.isoformat(),
            "until": self.until.isoformat(),
            "hours": self.hours,
            "source": self.source,
        }


def no_driving_until(infusion_end: datetime) -> NoDrivingAdvice:
    """The clock time before which the patient must not drive [S26-Mayo: 24 h].

    The hours are elapsed time: across a daylight-saving change the wall-clock time moves
    by an hour, which is why the sum is done in UTC and shown back in the end time's zone.
    """
    clock.aware("infusion_end", infusion_end)
    advice = _data()["advice"]
    span = int(advice["no_driving_hours"])
    until = (infusion_end.astimezone(UTC) + timedelta(hours=span)).astimezone(infusion_end.tzinfo)
    return NoDrivingAdvice(infusion_end, until, span, advice["no_driving_source"])
