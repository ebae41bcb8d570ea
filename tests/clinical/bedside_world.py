"""A session driven through the bedside core alone (no database): the shipped protocol, a
signed order as the orders area signs it, the day's facts, and a clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from ketamine_clinic.clinical.allergies import AllergyRecord as Allergy
from ketamine_clinic.clinical.bedside import decisions as d
from ketamine_clinic.clinical.bedside.model import (
    Accepted,
    DayFacts,
    Entry,
    MedicationLine,
    Refused,
    SignedOrder,
    StoredAlarm,
    TestResult,
)
from ketamine_clinic.clinical.bedside.rules import SessionRules, session_rules
from ketamine_clinic.clinical.bedside.view import SessionView, evolve
from ketamine_clinic.clinical.dosing import (
    InfusionPlan,
    WeightMeasurement,
    check_order,
    order_limits,
    rules_from_protocol,
)
from ketamine_clinic.clinical.limit_checks import Override
from ketamine_clinic.clinical.protocol import load_protocol
from ketamine_clinic.clinical.units import parse_bag, parse_rate

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
VITALS = {"systolic_bp_mmhg": 122, "diastolic_bp_mmhg": 78, "heart_rate_per_min": 72,
          "respiratory_rate_per_min": 14, "spo2_percent": 98, "etco2_mmhg": 38}
CADSS_NONE = {str(i): 0 for i in (1, 2, 6, 7, 15, 22)}
CADSS_SOME = {**CADSS_NONE, "1": 1}


def signed_order(protocol: str = "clinic-standard", *, weight_kg: str = "70",
                 max_rate: str = "100 mg/h", start: str = "60 mg/h",
                 step: str = "10 mg/h") -> SignedOrder:
    p = load_protocol(protocol)
    rules = rules_from_protocol(p)
    plan = InfusionPlan(start_rate=parse_rate(start), max_rate=parse_rate(max_rate),
                        titration_step=parse_rate(step), min_step_interval_min=Fraction(15),
                        planned_duration_h=Fraction(4), sessions=5)
    check = check_order(rules=rules, weight=WeightMeasurement(Fraction(weight_kg), T0.date()),
                        bag=parse_bag("500 mg in 500 mL"), plan=plan, on=T0.date())
    signed = tuple(Override(c.limit.quantity, "titrated-to-effect", "physician observes")
                   for c in check.needs_override)
    lines = tuple(
        MedicationLine(m.drug, m.dose.value, m.dose.unit, m.route, kind,
                       m.indication, 1 if m.times is None else int(m.times.value),
                       None if m.min_interval_min is None
                       else timedelta(minutes=float(m.min_interval_min.value)), m.dose.source)
        for kind, meds in (("premedication", p.premedications), ("rescue", p.rescue_medications))
        for m in meds)
    return SignedOrder(order_id=1, verified=True, weight_kg=Fraction(weight_kg),
                       concentration_mg_per_ml=Fraction(1), planned_duration=timedelta(hours=4),
                       max_rate_mg_per_h=check.maximum.rate_mg_per_h,
                       titration_rates_mg_per_h=tuple(s.forms.rate_mg_per_h for s in check.table),
                       order_limits=order_limits(check), signed_overrides=signed, lines=lines,
                       signed_by="Dr Alice")


def facts(**kw: Any) -> DayFacts:
    base: dict[str, Any] = {"consent_on_file": True, "screening_problem": None,
                            "today": T0.date(), "time_zone": "UTC"}
    base.update(kw)
    return DayFacts(**base)


@dataclass
class World:
    rules: SessionRules
    order: SignedOrder
    facts: DayFacts
    entries: list[Entry] = field(default_factory=list)
    alarms: list[StoredAlarm] = field(default_factory=list)
    clock: datetime = T0

    def view(self, now: datetime | None = None) -> SessionView:
        return evolve(self.entries, rules=self.rules, order=self.order, facts=self.facts,
                      now=now or self.clock, alarms=self.alarms)

    def at(self, minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    def do(self, command: Any) -> Accepted | Refused:
        self.clock = max(self.clock, command.at)
        result = d.decide(self.view(), command)
        if isinstance(result, Accepted):
            for new in result.entries:
                self.entries.append(Entry(len(self.entries) + 1, new.kind, new.at,
                                          dict(new.payload), new.corrects, new.reason))
            for alarm in result.alarms:
                self.alarms.append(StoredAlarm(alarm.key, alarm.kind, alarm.message,
                                               alarm.at, False))
        return result

    def ok(self, command: Any) -> Accepted:
        result = self.do(command)
        assert isinstance(result, Accepted), getattr(result, "reasons", result)
        return result

    def refused(self, command: Any) -> Refused:
        result = self.do(command)
        assert isinstance(result, Refused), result
        return result

    def ack_all(self) -> None:
        self.alarms = [replace(a, acknowledged=True) for a in self.alarms]

    # ---- the usual path
    def ready(self, vitals: dict[str, Any] | None = None, pregnancy: str = "not_pregnant",
              pain: int = 7) -> None:
        self.ok(d.CheckIn(self.at(0), chair="3"))
        self.ok(d.Observe(self.at(5), "vitals", vitals or VITALS))
        self.ok(d.Observe(self.at(6), "pain", {"nrs": pain}))
        self.ok(d.Observe(self.at(7), "sedation", {"score": 5}))
        self.ok(d.Observe(self.at(7), "dissociation", {"items": CADSS_NONE}))
        self.ok(d.PreAssess(self.at(10), {"iv_access_documented": True, "escort_name": "Luis",
                                          "pregnancy_status": pregnancy}))

    def premedicate(self) -> None:
        self.ok(d.Give(self.at(20), "glycopyrrolate", Fraction("0.2"), "mg", "IV"))

    def infusing(self) -> None:
        self.ready()
        self.premedicate()
        self.ok(d.SetRate(self.at(30), "60 mg/h"))

    def scores(self, minutes: float, moaas: int = 5, cadss: dict[str, int] | None = None
               ) -> None:
        self.ok(d.Observe(self.at(minutes), "sedation", {"score": moaas}))
        self.ok(d.Observe(self.at(minutes), "dissociation", {"items": cadss or CADSS_NONE}))


def world(protocol: str = "clinic-standard", order: SignedOrder | None = None,
          **fact_kw: Any) -> World:
    p = load_protocol(protocol)
    return World(session_rules(p), order or signed_order(protocol), facts(**fact_kw))


__all__ = [
    "CADSS_NONE",
    "CADSS_SOME",
    "T0",
    "VITALS",
    "Allergy",
    "TestResult",
    "World",
    "date",
    "signed_order",
    "world",
]
