"""Eligibility screening: patient facts + a protocol version → a decision with every reason.

:func:`screen` is pure. Its result carries the facts it used (with their SHA-256), the
protocol version (name, version, SHA-256) and, for each reason, the rule id, severity,
plain-language message, source and — when a fact was unknown — what to find out.

Decisions, worst first: ``ineligible`` (a rule of severity ``exclude`` fired),
``needs-physician-review`` (``review``: a physician may override it with a documented
reason), ``eligible-with-conditions`` (``condition``: e.g. a baseline ECG first),
``eligible``. Reasons of severity ``note`` are shown and stored but change nothing.

Unknown is never absent: a fact a rule needs that is missing from the facts yields the
rule's ``when_unknown`` severity (``review`` unless the protocol says otherwise) with the
question to answer. See ``docs/screening.md`` for the facts format.

Why one module (over 600 lines): one rule engine. The facts, one evaluator per rule kind
and the decision are read together (a rule kind is added here and in the protocol format);
the allergy, drug and interaction data it reads are modules of their own.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from functools import cache
from typing import Any

from ketamine_clinic.clinical.allergies import (
    AllergyRecord,
    allergy_from_dict,
    allergy_matches,
    unrecognised_allergies,
)
from ketamine_clinic.clinical.codes import lookup_diagnosis
from ketamine_clinic.clinical.drugs import interactions_for, lookup_drug, normalise_drug_name
from ketamine_clinic.clinical.plausibility import check_plausible
from ketamine_clinic.clinical.protocol import (
    Protocol,
    Quantity,
    RuleKind,
    ScreeningRule,
    Severity,
    condition_vocabulary,
)
from ketamine_clinic.clinical.units import exact, to_float
from ketamine_clinic.errors import UsageError
from ketamine_clinic.reference import read_toml

__all__ = [
    "SEX_AT_BIRTH",
    "BudapestChecklist",
    "BudapestCriteria",
    "Currency",
    "Decision",
    "PatientFacts",
    "Reason",
    "ScreeningResult",
    "budapest_criteria",
    "decision_with_overrides",
    "facts_from_dict",
    "screen",
    "screening_currency",
]

SEX_AT_BIRTH = ("female", "male", "intersex")


class Decision(enum.StrEnum):
    ELIGIBLE = "eligible"
    ELIGIBLE_WITH_CONDITIONS = "eligible-with-conditions"
    NEEDS_PHYSICIAN_REVIEW = "needs-physician-review"
    INELIGIBLE = "ineligible"


_DECISION_OF = {
    Severity.EXCLUDE: Decision.INELIGIBLE,
    Severity.REVIEW: Decision.NEEDS_PHYSICIAN_REVIEW,
    Severity.CONDITION: Decision.ELIGIBLE_WITH_CONDITIONS,
}


# --------------------------------------------------------------------------- Budapest


@dataclass(frozen=True, slots=True)
class BudapestCategory:
    id: str
    label: str
    symptoms: Mapping[str, str]  # item id -> text
    signs: Mapping[str, str]
    published_symptoms: str = ""  # the category's published wording (S65)
    published_signs: str = ""


@dataclass(frozen=True, slots=True)
class BudapestCriteria:
    """The checklist's categories and the counts required (``reference/budapest.toml``)."""

    categories: tuple[BudapestCategory, ...]
    symptom_categories_required: Quantity
    sign_categories_required: Quantity
    source: str
    criteria: tuple[str, ...] = ()  # the four criteria, as published (S65)

    def category_of(self, item: str, kind: str) -> str | None:
        for cat in self.categories:
            if item in (cat.symptoms if kind == "symptoms" else cat.signs):
                return cat.id
        return None


@cache
def budapest_criteria() -> BudapestCriteria:
    raw = read_toml("budapest.toml")
    counts = raw["counts"]

    def quantity(key: str) -> Quantity:
        q = counts[key]
        return Quantity(exact(q["value"], field=f"budapest.toml:counts.{key}"), q["unit"],
                        q["source"])

    return BudapestCriteria(
        categories=tuple(
            BudapestCategory(c["id"], c["label"],
                             {i["id"]: i["text"] for i in c["symptoms"]},
                             {i["id"]: i["text"] for i in c["signs"]},
                             c.get("published_symptoms", ""), c.get("published_signs", ""))
            for c in raw["category"]),
        symptom_categories_required=quantity("symptom_categories_required"),
        sign_categories_required=quantity("sign_categories_required"),
        source=raw["source"],
        criteria=tuple(raw.get("criteria", ())),
    )


@dataclass(frozen=True, slots=True)
class BudapestChecklist:
    """The Budapest checklist as recorded; ``None`` in any field means not recorded.

    ``symptoms`` and ``signs`` are item ids of ``reference/budapest.toml`` (an empty tuple
    means "asked, none"); they are kept sorted so equal checklists compare equal.
    """

    disproportionate_pain: bool | None
    symptoms: tuple[str, ...] | None
    signs: tuple[str, ...] | None
    no_better_diagnosis: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "disproportionate_pain": self.disproportionate_pain,
            "symptoms": None if self.symptoms is None else list(self.symptoms),
            "signs": None if self.signs is None else list(self.signs),
            "no_better_diagnosis": self.no_better_diagnosis,
        }

    def categories(self, kind: str) -> tuple[str, ...] | None:
        items = self.symptoms if kind == "symptoms" else self.signs
        if items is None:
            return None
        crit = budapest_criteria()
        found = {crit.category_of(i, kind) for i in items}
        return tuple(c.id for c in crit.categories if c.id in found)


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class PatientFacts:
    """What screening knows about a patient. ``None`` always means *unknown*.

    Attributes
    ----------
    age_years
        Whole years.
    sex_at_birth
        ``female``, ``male`` or ``intersex``.
    pregnant
        ``True``/``False``; ``None`` when unknown.
    weight_kg
        [kg].
    diagnoses
        ICD-10-CM codes (validated, upper case, sorted); ``()`` = none recorded as known.
    conditions, conditions_absent
        Condition ids known present / known absent; any other id is unknown.
    medications
        Names as given (lower-cased, sorted); ``()`` = takes none; ``None`` = not known.
    allergies
        Allergy records (sorted); ``()`` = none known; ``None`` = not known.
    budapest
        The Budapest checklist, or ``None`` if not recorded.
    """

    age_years: int | None = None
    sex_at_birth: str | None = None
    pregnant: bool | None = None
    weight_kg: Fraction | None = None
    diagnoses: tuple[str, ...] | None = None
    conditions: frozenset[str] = field(default_factory=frozenset)
    conditions_absent: frozenset[str] = field(default_factory=frozenset)
    medications: tuple[str, ...] | None = None
    budapest: BudapestChecklist | None = None
    allergies: tuple[AllergyRecord, ...] | None = None

    def condition(self, condition_id: str) -> bool | None:
        """``True`` present, ``False`` known absent, ``None`` unknown."""
        if condition_id in self.conditions:
            return True
        if condition_id in self.conditions_absent:
            return False
        return None

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form (lists sorted): the input of :attr:`sha256`."""
        vocabulary = condition_vocabulary()
        known = self.conditions | self.conditions_absent
        return {
            "age_years": self.age_years,
            "sex_at_birth": self.sex_at_birth,
            "pregnant": "unknown" if self.pregnant is None else self.pregnant,
            "weight_kg": None if self.weight_kg is None else to_float(self.weight_kg),
            "diagnoses": None if self.diagnoses is None else list(self.diagnoses),
            "conditions": sorted(self.conditions),
            "conditions_absent": sorted(self.conditions_absent),
            "conditions_unknown": [c for c in sorted(vocabulary) if c not in known],
            "medications": None if self.medications is None else list(self.medications),
            "budapest": None if self.budapest is None else self.budapest.to_dict(),
            "allergies": None if self.allergies is None
            else [a.to_dict() for a in self.allergies],
        }

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict`: equal facts, equal hash."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


_FACT_KEYS = ("age_years", "sex_at_birth", "pregnant", "weight_kg", "diagnoses", "conditions",
              "conditions_absent", "conditions_unknown", "medications", "budapest",
              "allergies")
_BUDAPEST_KEYS = ("disproportionate_pain", "symptoms", "signs", "no_better_diagnosis")


def _tri(value: Any, name: str) -> bool | None:
    if value is None or value == "unknown":
        return None
    if isinstance(value, bool):
        return value
    raise UsageError(name, f'must be true, false or "unknown", got {value!r}')


def _string_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise UsageError(name, "must be a list of non-empty strings")
    return value


def _checklist(value: Any) -> BudapestChecklist | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError("budapest", "must be an object (the checklist)")
    extra = sorted(set(value) - set(_BUDAPEST_KEYS))
    if extra:
        raise UsageError(f"budapest.{extra[0]}",
                         f"unknown key (known: {', '.join(_BUDAPEST_KEYS)})")
    crit = budapest_criteria()
    lists: dict[str, tuple[str, ...] | None] = {}
    for kind in ("symptoms", "signs"):
        items = value.get(kind)
        if items is None:
            lists[kind] = None
            continue
        for i, item in enumerate(_string_list(items, f"budapest.{kind}")):
            if crit.category_of(item, kind) is None:
                raise UsageError(f"budapest.{kind}[{i}]", f"unknown Budapest {kind[:-1]} {item!r}")
        lists[kind] = tuple(sorted(set(items)))
    return BudapestChecklist(
        disproportionate_pain=_tri(value.get("disproportionate_pain"),
                                   "budapest.disproportionate_pain"),
        symptoms=lists["symptoms"],
        signs=lists["signs"],
        no_better_diagnosis=_tri(value.get("no_better_diagnosis"), "budapest.no_better_diagnosis"),
    )


def facts_from_dict(data: Mapping[str, Any]) -> PatientFacts:
    """Validate a facts document (the JSON of ``screen FACTS.json``).

    Raises :class:`UsageError` naming the field: an unknown key, an unknown condition id, an
    unknown ICD-10-CM code, an implausible age or weight, a condition listed as both present
    and absent.
    """
    if not isinstance(data, Mapping):
        raise UsageError("facts", "must be a JSON object")
    extra = sorted(set(data) - set(_FACT_KEYS))
    if extra:
        raise UsageError(extra[0], f"unknown fact (known: {', '.join(_FACT_KEYS)})")
    age = data.get("age_years")
    if age is not None:
        if isinstance(age, bool) or not isinstance(age, int):
            raise UsageError("age_years", f"must be a whole number of years, got {age!r}")
        check_plausible("age_years", age)
    sex = data.get("sex_at_birth")
    if sex is not None and sex not in SEX_AT_BIRTH:
        raise UsageError("sex_at_birth", f"must be one of {', '.join(SEX_AT_BIRTH)}, got {sex!r}")
    weight = data.get("weight_kg")
    weight_kg = None
    if weight is not None:
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise UsageError("weight_kg", f"must be a number, got {weight!r}")
        weight_kg = exact(weight, field="weight_kg")
        check_plausible("weight_kg", float(weight_kg))
    diagnoses = None
    if data.get("diagnoses") is not None:
        codes = _string_list(data["diagnoses"], "diagnoses")
        diagnoses = tuple(sorted({
            lookup_diagnosis("icd10cm", code, field=f"diagnoses[{i}]").code
            for i, code in enumerate(codes)}))
    vocabulary = condition_vocabulary()
    sets: dict[str, set[str]] = {}
    for key in ("conditions", "conditions_absent", "conditions_unknown"):
        ids = _string_list(data.get(key, []), key)
        for i, cid in enumerate(ids):
            if cid not in vocabulary:
                raise UsageError(f"{key}[{i}]", f"unknown condition id {cid!r} "
                                 "(ketamine-clinic screen --vocabulary lists them)")
        sets[key] = set(ids)
    for a, b in (("conditions", "conditions_absent"), ("conditions", "conditions_unknown"),
                 ("conditions_absent", "conditions_unknown")):
        both = sorted(sets[a] & sets[b])
        if both:
            raise UsageError(b, f"{both[0]!r} is also listed in {a}")
    medications = None
    if data.get("medications") is not None:
        names = _string_list(data["medications"], "medications")
        medications = tuple(sorted({" ".join(n.lower().split()) for n in names}))
    allergies = None
    if data.get("allergies") is not None:
        if not isinstance(data["allergies"], list):
            raise UsageError("allergies", "must be a list of allergy records")
        allergies = tuple(sorted({allergy_from_dict(a, field=f"allergies[{i}]")
                                  for i, a in enumerate(data["allergies"])}))
    return PatientFacts(
        age_years=age,
        sex_at_birth=sex,
        pregnant=_tri(data.get("pregnant"), "pregnant"),
        weight_kg=weight_kg,
        diagnoses=diagnoses,
        conditions=frozenset(sets["conditions"]),
        conditions_absent=frozenset(sets["conditions_absent"]),
        medications=medications,
        budapest=_checklist(data.get("budapest")),
        allergies=allergies,
    )


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, slots=True)
class Reason:
    """One finding. ``find_out`` is set when the reason is an unknown fact."""

    rule: str
    severity: Severity
    message: str
    source: str
    find_out: str = ""

    @property
    def overridable(self) -> bool:
        """Only ``review`` reasons may be overridden (by a physician, with a reason)."""
        return self.severity is Severity.REVIEW

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity.value, "message": self.message,
                "source": self.source, "find_out": self.find_out,
                "overridable": self.overridable}


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """A decision with its reasons, the facts it used and the protocol version it used."""

    decision: Decision
    reasons: tuple[Reason, ...]
    protocol_name: str
    protocol_version: int
    protocol_sha256: str
    validity_days: int
    facts: PatientFacts

    @property
    def facts_sha256(self) -> str:
        return self.facts.sha256

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reasons": [r.to_dict() for r in self.reasons],
            "protocol": {"name": self.protocol_name, "version": self.protocol_version,
                         "sha256": self.protocol_sha256},
            "validity_days": self.validity_days,
            "facts": self.facts.to_dict(),
            "facts_sha256": self.facts_sha256,
        }


def _decide(reasons: Iterable[Reason]) -> Decision:
    worst = Decision.ELIGIBLE
    order = list(Decision)
    for reason in reasons:
        decision = _DECISION_OF.get(reason.severity)
        if decision is not None and order.index(decision) > order.index(worst):
            worst = decision
    return worst


def decision_with_overrides(result: ScreeningResult, overridden: Iterable[str]) -> Decision:
    """The decision once a physician has overridden the named ``review`` reasons.

    Raises :class:`UsageError` for a rule id that is not a reason of ``result`` or whose
    severity is not ``review`` (exclusions and conditions cannot be overridden).
    """
    by_rule = {r.rule: r for r in result.reasons}
    waived = set()
    for rule in overridden:
        reason = by_rule.get(rule)
        if reason is None:
            raise UsageError("rule", f"{rule!r} is not a reason of this screening")
        if not reason.overridable:
            raise UsageError("rule", f"{rule!r} is {reason.severity.value}: it cannot be "
                             "overridden")
        waived.add(rule)
    return _decide(r for r in result.reasons if r.rule not in waived)


# --------------------------------------------------------------------------- rules


def _fill(rule: ScreeningRule, **values: str) -> str:
    threshold = "" if rule.threshold_years is None else f"{to_float(rule.threshold_years.value):g}"
    return rule.message.format(threshold=threshold, conditions=values.get("conditions", ""))


def _unknown(rule: ScreeningRule, what: str, find_out: str, rule_id: str | None = None
             ) -> Reason:
    return Reason(rule_id or rule.id, rule.when_unknown,
                  f"Not known: {what}. Unknown is not treated as absent.", rule.source,
                  find_out)


def _age(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    if facts.age_years is None:
        return [_unknown(rule, "the patient's age", "the patient's age (date of birth)")]
    assert rule.threshold_years is not None
    threshold = rule.threshold_years.value
    below = facts.age_years < threshold
    fires = below if rule.kind is RuleKind.AGE_BELOW else not below
    return [Reason(rule.id, rule.severity, _fill(rule), rule.source)] if fires else []


def _pregnancy(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    if facts.pregnant is True:
        return [Reason(rule.id, rule.severity, _fill(rule), rule.source)]
    if facts.pregnant is False or facts.sex_at_birth == "male":
        return []
    assert rule.threshold_years is not None
    if facts.age_years is not None and facts.age_years >= rule.threshold_years.value:
        return []
    reason = _unknown(rule, "whether the patient is pregnant",
                      "pregnancy status (a pregnancy test result)")
    return [Reason(reason.rule, reason.severity, f"{reason.message} {_fill(rule)}",
                   reason.source, reason.find_out)]


def _conditions(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    vocabulary = condition_vocabulary()
    present = [c for c in rule.conditions if facts.condition(c) is True]
    if present:
        labels = ", ".join(vocabulary[c].label.lower() for c in present)
        return [Reason(rule.id, rule.severity, _fill(rule, conditions=labels), rule.source)]
    unknown = [c for c in rule.conditions if facts.condition(c) is None]
    if unknown:
        labels = ", ".join(vocabulary[c].label.lower() for c in unknown)
        questions = " ".join(vocabulary[c].question for c in unknown)
        return [_unknown(rule, labels, questions)]
    return []


def _indication(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    if facts.diagnoses is None:
        return [_unknown(rule, "the diagnosis", "the patient's diagnosis (ICD-10-CM code)")]
    groups = {_group(code) for code in facts.diagnoses}
    if groups & set(rule.accept):
        return []
    return [Reason(rule.id, rule.severity, _fill(rule), rule.source)]


def _group(code: str) -> str:
    return "crps" if lookup_diagnosis("icd10cm", code).is_crps else "other"


def _budapest(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    if facts.diagnoses is not None and "crps" not in {_group(c) for c in facts.diagnoses}:
        return []  # no CRPS diagnosis to confirm (the indication rule speaks to that)
    checklist = facts.budapest
    missing = ["the whole checklist"] if checklist is None else [
        name for name, value in (
            ("continuing disproportionate pain", checklist.disproportionate_pain),
            ("symptoms", checklist.symptoms), ("signs", checklist.signs),
            ("no better diagnosis", checklist.no_better_diagnosis))
        if value is None]
    failed = []
    crit = budapest_criteria()
    if checklist is not None:
        if checklist.disproportionate_pain is False:
            failed.append("pain is not continuing and disproportionate")
        if checklist.no_better_diagnosis is False:
            failed.append("another diagnosis better explains the signs and symptoms")
        for kind, need in (("symptoms", crit.symptom_categories_required),
                           ("signs", crit.sign_categories_required)):
            cats = checklist.categories(kind)
            if cats is not None and len(cats) < need.value:
                failed.append(f"{kind} in {len(cats)} categories ({', '.join(cats) or 'none'}); "
                              f"at least {to_float(need.value):g} needed")
    if failed:
        message = f"{_fill(rule)} Not met: {'; '.join(failed)}."
        find_out = ""
        if missing:
            message += f" Not recorded: {', '.join(missing)}."
            find_out = f"record the rest of the Budapest checklist: {', '.join(missing)}"
        return [Reason(rule.id, rule.severity, message, rule.source, find_out)]
    if missing:
        return [_unknown(rule, f"Budapest checklist ({', '.join(missing)})",
                         f"record the Budapest checklist: {', '.join(missing)}")]
    return []


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unnamed"


def _interactions(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    if facts.medications is None:
        return [_unknown(rule, "the patient's current medications",
                         "the current medications, including over-the-counter and herbal ones")]
    hits: dict[str, tuple[Any, list[str]]] = {}
    reasons = []
    for name in facts.medications:
        drug = lookup_drug(name)
        if drug is None:
            reasons.append(Reason(
                f"{rule.id}.unrecognised.{_slug(normalise_drug_name(name))}", rule.severity,
                f"{_fill(rule)} Unrecognised: {name!r}.", rule.source,
                f"the generic name or spelling of {name!r}"))
            continue
        for item in interactions_for(drug):
            hits.setdefault(item.id, (item, []))[1].append(name)
    for item_id, (item, names) in hits.items():
        source = item.source if not item.members_source else f"{item.source}; members: " \
            f"{item.members_source}"
        reasons.append(Reason(
            f"{rule.id}.{item_id}", item.severity,
            f"{item.title} ({', '.join(names)}): {item.effect} {item.action}", source))
    return reasons


def _allergy(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    if facts.allergies is None:
        return [_unknown(rule, "the patient's allergies",
                         "the patient's allergies, including reactions to anaesthetics")]
    reasons = []
    for drug in rule.drugs:
        for match in allergy_matches(facts.allergies, drug):
            reasons.append(Reason(f"{rule.id}.{_slug(match.record.label)}", rule.severity,
                                  f"{match.message} {_fill(rule)}", rule.source))
    return reasons


@cache
def _drug_contraindications() -> Mapping[str, tuple[tuple[str, ...], str]]:
    """generic → (condition ids, source), from ``reference/drug_contraindications.toml``."""
    raw = read_toml("drug_contraindications.toml")
    vocabulary = condition_vocabulary()
    out = {}
    for i, row in enumerate(raw["drug"]):
        if lookup_drug(row["generic"]) is None:
            raise UsageError(f"drug_contraindications.toml:drug[{i}].generic",
                             f"{row['generic']!r} is not in drugs.toml")
        for cid in row["conditions"]:
            if cid not in vocabulary:
                raise UsageError(f"drug_contraindications.toml:drug[{i}].conditions",
                                 f"unknown condition id {cid!r}")
        out[row["generic"]] = (tuple(row["conditions"]), row["source"])
    return out


def _protocol_drugs(rule: ScreeningRule, facts: PatientFacts, protocol: Protocol
                    ) -> list[Reason]:
    """Each premedication and rescue drug: allergies, then its contraindications."""
    vocabulary = condition_vocabulary()
    reasons: list[Reason] = []
    given = [(m.drug, "premedication") for m in protocol.premedications]
    given += [(m.drug, "rescue drug") for m in protocol.rescue_medications]
    seen: set[str] = set()
    for name, role in given:
        entry = lookup_drug(name)
        generic = entry.generic if entry is not None else normalise_drug_name(name)
        if generic in seen:
            continue
        seen.add(generic)
        what = f"{generic} ({role} of this protocol)"
        if facts.allergies is None:
            reasons.append(_unknown(rule, f"whether the patient is allergic to {what}",
                                    "the patient's allergies", f"{rule.id}.allergy.{generic}"))
        else:
            for match in allergy_matches(facts.allergies, generic):
                reasons.append(Reason(f"{rule.id}.allergy.{_slug(generic)}", rule.severity,
                                      f"{match.message} It is the {role} of this protocol. "
                                      f"{_fill(rule)}", rule.source))
        conditions, source = _drug_contraindications().get(generic, ((), ""))
        present = [c for c in conditions if facts.condition(c) is True]
        rule_id = f"{rule.id}.{_slug(generic)}"
        if present:
            labels = ", ".join(vocabulary[c].label.lower() for c in present)
            reasons.append(Reason(rule_id, rule.severity,
                                  f"{what.capitalize()} is contraindicated in {labels}. "
                                  f"{_fill(rule)}", source))
            continue
        unknown = [c for c in conditions if facts.condition(c) is None]
        if unknown:
            labels = ", ".join(vocabulary[c].label.lower() for c in unknown)
            reasons.append(Reason(
                rule_id, rule.when_unknown,
                f"Not known: {labels}, which contraindicate {what}. Unknown is not treated "
                "as absent.", source, " ".join(vocabulary[c].question for c in unknown)))
    return reasons


def _unrecognised_allergies(facts: PatientFacts) -> list[Reason]:
    """A note: allergies no drug name matches are for a person to read (never dropped)."""
    if not facts.allergies:
        return []
    odd = unrecognised_allergies(facts.allergies)
    if not odd:
        return []
    names = ", ".join(repr(a.label) for a in odd)
    return [Reason("allergies.unrecognised", Severity.NOTE,
                   f"Allergies recorded that the drug dictionary does not name: {names}. "
                   "Check them against every drug given.",
                   "clinic policy (set by the engineering team as a configurable default for "
                   "the medical director to confirm): allergies are shown, never dropped")]


def _fact_known(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    if getattr(facts, rule.fact) is None:
        return [Reason(rule.id, rule.severity, _fill(rule), rule.source, rule.fact)]
    return []


def _always(rule: ScreeningRule, facts: PatientFacts) -> list[Reason]:
    return [Reason(rule.id, rule.severity, _fill(rule), rule.source)]


_ENGINE: dict[RuleKind, Callable[[ScreeningRule, PatientFacts], list[Reason]]] = {
    RuleKind.AGE_BELOW: _age,
    RuleKind.AGE_AT_OR_ABOVE: _age,
    RuleKind.PREGNANCY: _pregnancy,
    RuleKind.CONDITIONS: _conditions,
    RuleKind.ALWAYS: _always,
    RuleKind.INDICATION: _indication,
    RuleKind.BUDAPEST: _budapest,
    RuleKind.INTERACTIONS: _interactions,
    RuleKind.FACT_KNOWN: _fact_known,
    RuleKind.ALLERGY: _allergy,
}


def screen(facts: PatientFacts, protocol: Protocol) -> ScreeningResult:
    """Screen ``facts`` against every rule of ``protocol``.

    Parameters
    ----------
    facts
        Validated facts (:func:`facts_from_dict`).
    protocol
        The protocol version; its rules, thresholds and severities decide everything.

    Returns
    -------
    ScreeningResult
        Reasons sorted worst first (then in the protocol's rule order), the decision, the
        facts and the protocol version used.
    """
    reasons: list[Reason] = []
    for rule in protocol.screening.rules:
        if rule.kind is RuleKind.PROTOCOL_DRUGS:
            reasons += _protocol_drugs(rule, facts, protocol)
        else:
            reasons += _ENGINE[rule.kind](rule, facts)
    reasons += _unrecognised_allergies(facts)
    reasons.sort(key=lambda r: r.severity.rank)  # stable: rule order within a severity
    return ScreeningResult(
        decision=_decide(reasons),
        reasons=tuple(reasons),
        protocol_name=protocol.name,
        protocol_version=protocol.version,
        protocol_sha256=protocol.sha256,
        validity_days=int(protocol.screening.validity_days.value),
        facts=facts,
    )


# --------------------------------------------------------------------------- currency


@dataclass(frozen=True, slots=True)
class Currency:
    """Whether a stored screening may still be used, and if not, every reason why."""

    current: bool
    valid_until: date
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"current": self.current, "valid_until": self.valid_until.isoformat(),
                "reasons": list(self.reasons)}


def screening_currency(*, screened_on: date, today: date, validity_days: int,
                       facts_sha256_used: str, facts_now: PatientFacts,
                       for_new_series: bool = False) -> Currency:
    """Is a stored screening still current?

    Parameters
    ----------
    screened_on, today
        Dates of the screening and of the question.
    validity_days
        The protocol version's ``screening.validity_days`` [d]: the screening is valid
        through ``screened_on + validity_days`` inclusive.
    facts_sha256_used
        :attr:`PatientFacts.sha256` of the facts the screening used (as stored).
    facts_now
        The patient's facts today.
    for_new_series
        ``True`` when the screening would authorise a series other than the one it was
        done for: a new series always needs a new screening.
    """
    if validity_days < 0:
        raise UsageError("validity_days", "must not be negative")
    if today < screened_on:
        raise UsageError("today", "is before the screening date")
    valid_until = screened_on + timedelta(days=validity_days)
    reasons = []
    if today > valid_until:
        reasons.append(f"older than the protocol's validity of {validity_days} days "
                       f"(valid until {valid_until.isoformat()})")
    if facts_now.sha256 != facts_sha256_used:
        reasons.append("the patient's facts have changed since the screening")
    if for_new_series:
        reasons.append("a new series needs a new screening")
    return Currency(not reasons, valid_until, tuple(reasons))


def reasons_by_severity(result: ScreeningResult) -> Mapping[Severity, Sequence[Reason]]:
    """The reasons grouped by severity (worst first), for display."""
    out: dict[Severity, list[Reason]] = {}
    for reason in result.reasons:
        out.setdefault(reason.severity, []).append(reason)
    return out
