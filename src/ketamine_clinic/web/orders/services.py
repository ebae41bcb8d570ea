"""Writes for series and infusion orders. Each runs in one transaction and is audited.

Workflow: draft (written) → signed by a physician → verified by a second clinician, blind
(active) → completed or discontinued with a reason. Writing and signing need a current
screening (``protocols.selectors.screening_current``). A signed order is never edited: a
change discontinues it and writes a new draft that points back at it.

Limit decisions come from the core (``clinical.dosing.check_order`` and
``clinical.limit_checks.accept``). A write or signature that a limit refuses stores
nothing but its limit events, which are kept for quality review.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.clinical.dosing import OrderCheck, check_order, double_check
from ketamine_clinic.clinical.limit_checks import Acceptance, Override, accept
from ketamine_clinic.clinical.units import (
    RateForm,
    exact,
    parse_bag,
    parse_concentration_mg_per_ml,
    parse_rate,
)
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.inputs import required_text
from ketamine_clinic.web.orders.dosing import (
    order_check_of,
    order_inputs,
    plan_of,
    rules_of,
    weight_of,
)
from ketamine_clinic.web.orders.models import LimitEvent, Order, OrderEvent, Series
from ketamine_clinic.web.patients import services as patient_services
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.patients.selectors import latest_weight
from ketamine_clinic.web.protocols.models import ProtocolVersion, Screening
from ketamine_clinic.web.protocols.selectors import screening_latest_status

# The core's event words → LimitEvent.outcome.
OUTCOMES = {"block": "blocked", "hit": "hit", "override": "overridden", "confirm": "confirmed"}


class LimitRefusal(UsageError):
    """A write or signature refused by a limit: blocked, or a soft limit without an
    override, or a wrong-unit guard without a confirmation. Carries the check so that the
    page can show what is needed. The write or signature that raises it has recorded its
    limit decisions and an audit entry first."""

    keeps_records = True

    def __init__(self, field: str, problem: str, *, check: OrderCheck,
                 acceptance: Acceptance) -> None:
        super().__init__(field, problem)
        self.check = check
        self.acceptance = acceptance


def _require(actor: Actor, capability: Capability, field: str, problem: str) -> None:
    if actor.user is None or not actor.user.can(capability):
        raise UsageError(field, problem)


def _screening(patient: Patient, protocol_version: ProtocolVersion, *,
               series: Series | None, today: date) -> Screening:
    """The screening that allows treatment under ``protocol_version`` for ``series``
    (``None``: a new series), as ``protocols.selectors.screening_current`` decides;
    otherwise a :class:`UsageError` on ``screening`` that says why not."""
    status = screening_latest_status(patient, protocol_version, series=series, today=today)
    if status is not None and status.current:
        return status.screening
    if status is None:
        why = "not screened under this version: screen the patient"
    else:
        # The status says why; only an out-of-date screening is mended by screening again.
        why = "; ".join(status.blocking)
        why += ": screen the patient again" if status.out_of_date else ""
    raise UsageError("screening", f"{patient.full_name} has no current screening for "
                                  f"{protocol_version} that allows treatment: {why}")


def _whole(value: Any, field: str, *, minimum: int = 1) -> int:
    number = exact(value if not isinstance(value, str) else value.strip(), field=field)
    if number.denominator != 1 or number < minimum:
        raise UsageError(field, f"must be a whole number of at least {minimum}")
    if number > 32767:
        raise UsageError(field, "is implausibly large")
    return int(number)


def _decimal(value: Fraction, field: str) -> Decimal:
    """A stored decimal (3 places) that equals ``value`` exactly, or a UsageError."""
    try:
        d = Decimal(value.numerator) / Decimal(value.denominator)
        q = d.quantize(Decimal("0.001"))
    except InvalidOperation:
        raise UsageError(field, "is out of range") from None
    if Fraction(q) != value:
        raise UsageError(field, "use at most 3 decimal places")
    return q


def limit_event_record(*, actor: Actor, acceptance: Acceptance,
                       protocol_version: ProtocolVersion, context: str,
                       order: Order | None = None, patient: Patient | None = None,
                       session_id: int | None = None,
                       detail: dict[str, Any] | None = None) -> list[LimitEvent]:
    """Store ``acceptance.events`` (blocks, hits, overrides, confirmations) for quality review.

    ``context`` is a ``LimitEvent.Context`` value (``write``, ``sign``, ``verify``,
    ``rate_change``); sessions pass ``rate_change`` with ``session_id``. Outcomes:
    block → ``blocked``, hit → ``hit``, override → ``overridden``, confirm → ``confirmed``.
    """
    if context not in LimitEvent.Context.values:
        raise UsageError("context", f"must be one of {', '.join(LimitEvent.Context.values)}")
    rows = []
    for ev in acceptance.events:
        check = ev.check.to_dict() if ev.check else None
        cross = ev.cross_check.to_dict() if ev.cross_check else None
        if check is not None:
            quantity, kind = check["limit"], check["kind"]
            value, bound = check["value"], check["bound"]
        else:
            assert cross is not None  # the core's events carry one or the other
            quantity, kind = cross["check"], "cross-check"
            value, bound = cross["value"], cross["reference"]
        rows.append(LimitEvent(
            order=order, patient=patient if order is None else order.patient,
            session_id_value=session_id, protocol_version=protocol_version,
            context=context, quantity=quantity, kind=kind, outcome=OUTCOMES[ev.event],
            value=value, bound=bound,
            reason_code=ev.override.reason_code if ev.override else "",
            reason_text=ev.override.free_text if ev.override else "",
            detail={**ev.to_dict(), **(detail or {})}, by=actor.user))
    with transaction.atomic():
        for row in rows:
            row.save()
    return rows


def _overrides(raw: Sequence[Override | dict[str, str]]) -> list[Override]:
    out = []
    for item in raw:
        if isinstance(item, Override):
            out.append(item)
        else:
            out.append(Override(str(item.get("quantity", "")), str(item.get("reason_code", "")),
                                str(item.get("free_text", ""))))
    return out


def _refusal_text(acceptance: Acceptance) -> tuple[str, str]:
    """(field, message) for a refused acceptance, naming every limit at fault."""
    parts = []
    field = "limits"
    for ev in acceptance.events:
        if ev.event == "block" and ev.check is not None:
            c = ev.check
            side = "above" if c.side == "upper" else "below"
            parts.append(f"{c.limit.quantity} {float(c.value):.4g} is {side} the hard limit "
                         f"{float(c.bound):g} ({c.limit.source}): blocked")
            field = field if field != "limits" else f"limits.{c.limit.quantity}"
    for c in acceptance.missing_overrides:
        side = "above" if c.side == "upper" else "below"
        parts.append(f"{c.limit.quantity} {float(c.value):.4g} is {side} the soft limit "
                     f"{float(c.bound):g}: give a reason code and an explanation")
        field = field if field != "limits" else f"override.{c.limit.quantity}"
    for x in acceptance.missing_confirmations:
        parts.append(f"{x.message}: confirm it ({x.code})")
        field = field if field != "limits" else f"confirm.{x.code}"
    return field, "; ".join(parts)


def medication_lines(chosen: Sequence[str] | None, available: Sequence[Any],
                 field: str) -> list[dict[str, Any]]:
    """The protocol's premedications or rescue medications the physician kept (by drug)."""
    by_drug = {m.drug: m for m in available}
    names = list(by_drug) if chosen is None else list(chosen)
    unknown = [n for n in names if n not in by_drug]
    if unknown:
        raise UsageError(field, f"{unknown[0]!r} is not one the protocol lists "
                                f"({', '.join(by_drug) or 'none'})")
    out = []
    for name in names:
        m = by_drug[name]
        out.append({"drug": m.drug, "dose": float(m.dose.value), "unit": m.dose.unit,
                    "route": m.route, "timing": m.timing, "indication": m.indication,
                    "source": m.dose.source,
                    "max_doses": 1 if m.times is None else int(m.times.value),
                    "min_interval_min": None if m.min_interval_min is None
                    else float(m.min_interval_min.value)})
    return out


def order_write(
    *,
    actor: Actor,
    patient: Patient,
    protocol_version: ProtocolVersion,
    vial_strength_mg_per_ml: Any,
    bag: str,
    start_rate: str,
    max_rate: str,
    titration_step: str = "",
    min_step_interval_min: Any,
    planned_duration_min: Any,
    planned_sessions: Any,
    spacing_days: Any,
    bolus: str = "",
    premedications: Sequence[str] | None = None,
    rescue_medications: Sequence[str] | None = None,
    weight_kg: Any = None,
    overrides: Sequence[Override | dict[str, str]] = (),
    confirmed: Sequence[str] = (),
    replaces: Order | None = None,
    change_reason: str = "",
) -> Order:
    """Write a draft order (and its series) after the core's order check.

    ``weight_kg``, if given, records a new weight now (in the same transaction) and doses
    on it; otherwise the latest recorded weight is used. ``premedications`` and
    ``rescue_medications`` name the protocol's drugs to keep (``None``: all).
    ``replaces`` with ``change_reason`` makes this a change: the old order is discontinued
    and the new draft points back at it, in one transaction.

    The patient needs a current screening under ``protocol_version``
    (``protocols.selectors.screening_current``): for a new series, one that no series has
    used yet; for a change, the series' own (or a newer unused one).

    Raises :class:`UsageError` naming the field for bad input, and :class:`LimitRefusal`
    when a limit refuses (its events are stored; nothing else is).
    """
    _require(actor, Capability.WRITE_ORDER, "written_by", "only a physician may write an order")
    try:
        with transaction.atomic():
            return _write(**locals())
    except LimitRefusal as refusal:
        limit_event_record(actor=actor, acceptance=refusal.acceptance,
                           protocol_version=protocol_version,
                           context=LimitEvent.Context.WRITE, patient=patient,
                           detail={"refused": True,
                                   "replaces": replaces.pk if replaces else None})
        audit_record(actor=actor.at(patient.site.code), action=AuditAction.ORDER_WRITE_REFUSED,
                     object_type="patient", object_id=patient.pk,
                     detail={"outcome": refusal.acceptance.outcome.value,
                             "field": refusal.field})
        raise


def _write(*, actor: Actor, patient: Patient, protocol_version: ProtocolVersion,
           vial_strength_mg_per_ml: Any, bag: str, start_rate: str, max_rate: str,
           titration_step: str, min_step_interval_min: Any, planned_duration_min: Any,
           planned_sessions: Any, spacing_days: Any, bolus: str,
           premedications: Sequence[str] | None, rescue_medications: Sequence[str] | None,
           weight_kg: Any, overrides: Sequence[Any], confirmed: Sequence[str],
           replaces: Order | None, change_reason: str) -> Order:
    today = timezone.localdate()
    protocol = protocol_version.protocol()
    if replaces is not None:
        change_reason = required_text("change_reason", change_reason)
        if replaces.patient_id != patient.pk:
            raise UsageError("replaces", "belongs to another patient")
        if replaces.protocol_version_id != protocol_version.pk:
            raise UsageError("protocol_version", "a change stays under the same protocol "
                                                 "version; start a new series instead")
    screening = _screening(patient, protocol_version,
                           series=replaces.series if replaces is not None else None,
                           today=today)
    vial = exact(str(vial_strength_mg_per_ml).strip(), field="vial_strength_mg_per_ml")
    vials = [q.value for q in protocol.drug.vial_strengths_mg_per_ml]
    if vial not in vials:
        raise UsageError("vial_strength_mg_per_ml",
                         f"{float(vial):g} mg/mL is not a vial strength {protocol.label} lists "
                         f"({', '.join(f'{float(v):g}' for v in vials)} mg/mL)")
    sessions = _whole(planned_sessions, "planned_sessions")
    spacing = _whole(spacing_days, "spacing_days")
    interval = _whole(min_step_interval_min, "min_step_interval_min")
    duration = _whole(planned_duration_min, "planned_duration_min")
    parsed_bag = parse_bag(bag, field="bag")
    bag_drug = _decimal(parsed_bag.drug_mg, "bag")
    bag_volume = _decimal(parsed_bag.volume_ml, "bag")
    plan = plan_of(start_rate=start_rate, max_rate=max_rate, titration_step=titration_step,
                   min_step_interval_min=interval, planned_duration_min=duration,
                   sessions=sessions, bolus=bolus)
    premeds = medication_lines(premedications, protocol.premedications, "premedications")
    rescue = medication_lines(rescue_medications, protocol.rescue_medications,
                          "rescue_medications")
    if weight_kg not in (None, ""):
        weight_row = patient_services.measurement_record(
            actor=actor, patient=patient, kind="weight_kg", measured_at=timezone.now(),
            value_number=_weight_number(weight_kg), note="recorded with an order")
    else:
        latest = latest_weight(patient)
        if latest is None:
            raise UsageError("weight", "no weight is recorded: weigh the patient")
        weight_row = latest
    rules = rules_of(protocol_version)
    check = check_order(rules=rules, weight=weight_of(weight_row, patient), bag=parsed_bag,
                        plan=plan, on=today)
    given = _overrides(overrides)
    asking = {c.code for c in check.needs_confirmation}
    acceptance = accept(check.limit_checks, check.cross_checks,
                        overrides=[o for o in given if _exceeded(check, o.quantity)],
                        confirmed=[c for c in confirmed if c in asking])
    if not acceptance.accepted:
        field, message = _refusal_text(acceptance)
        raise LimitRefusal(field, message, check=check, acceptance=acceptance)
    if replaces is not None:
        series = replaces.series
        _end(actor=actor, order=replaces, status=Order.Status.DISCONTINUED,
             reason=f"changed: {change_reason}", allowed=(Order.Status.DRAFT,
                                                         Order.Status.SIGNED,
                                                         Order.Status.ACTIVE))
    else:
        series = Series.objects.create(
            patient=patient, protocol_version=protocol_version, screening=screening,
            planned_sessions=sessions, spacing_days=spacing, created_by=actor.require_user())
    used = [o for o in given if _exceeded(check, o.quantity)]
    order = Order.objects.create(
        series=series, patient=patient, protocol_version=protocol_version,
        replaces=replaces, drug=protocol.drug.form.value,
        vial_strength_mg_per_ml=_decimal(vial, "vial_strength_mg_per_ml"),
        bag_drug_mg=bag_drug, bag_volume_ml=bag_volume,
        dosing_basis=protocol.dosing.basis.value,
        dosing_weight_kg=_decimal_weight(check.weight.weight_kg),
        weight_measurement=weight_row, weight_rule=check.weight.basis.value,
        start_rate_text=plan.start_rate.text, titration_step_text=titration_step.strip(),
        max_rate_text=plan.max_rate.text, min_step_interval_min=interval,
        planned_duration_min=duration, bolus_text=bolus.strip(),
        premedications=premeds, rescue_medications=rescue,
        overrides=[o.to_dict() for o in used], confirmed=sorted(asking),
        computed={**check.to_dict(), "acceptance": acceptance.to_dict(),
                  "screening_id": screening.pk},
        written_by=actor.require_user())
    OrderEvent.objects.create(order=order, kind="written", by=actor.require_user(), detail={
        "outcome": check.outcome.value, "replaces": replaces.pk if replaces else None,
        "change_reason": change_reason})
    limit_event_record(actor=actor, acceptance=acceptance, protocol_version=protocol_version,
                       context=LimitEvent.Context.WRITE, order=order)
    audit_record(actor=actor.at(patient.site.code),
                 action=AuditAction.ORDER_WRITE, object_type="order",
                 object_id=order.pk,
                 detail={"patient": patient.pk, "series": series.pk,
                         "protocol": protocol.label, "outcome": check.outcome.value,
                         "replaces": replaces.pk if replaces else None})
    return order


def _weight_number(value: Any) -> Decimal:
    number = exact(value if not isinstance(value, str) else value.strip(), field="weight_kg")
    if number <= 0:
        raise UsageError("weight_kg", "must be greater than zero")
    return Decimal(number.numerator) / Decimal(number.denominator)


def _decimal_weight(weight_kg: Fraction) -> Decimal:
    # The dosing weight is shown and filtered on; the exact value is in ``computed``.
    return (Decimal(weight_kg.numerator) / Decimal(weight_kg.denominator)).quantize(
        Decimal("0.001"))


def _exceeded(check: OrderCheck, quantity: str) -> bool:
    return any(c.limit.quantity == quantity and c.needs_override for c in check.limit_checks)


def _lock(order: Order) -> Order:
    return (Order.objects.select_for_update().select_related(
        "patient", "patient__site", "series", "protocol_version", "weight_measurement")
        .get(pk=order.pk))


def order_sign(*, actor: Actor, order: Order,
               overrides: Sequence[Override | dict[str, str]] = (),
               confirmed: Sequence[str] = ()) -> Order:
    """Sign a draft: the screening must still be current for the order's series (within its
    validity, the registry's facts unchanged) and the order check is re-run today (the
    weight may have aged since it was written). Overrides and confirmations given when
    writing still count; new findings need new ones."""
    _require(actor, Capability.SIGN_ORDER, "signed_by", "only a physician may sign an order")
    refusal: LimitRefusal | None = None
    with transaction.atomic():
        locked = _lock(order)
        if locked.status != Order.Status.DRAFT:
            raise UsageError("status", f"only a draft can be signed; this order is "
                                       f"{locked.get_status_display().lower()}")
        today = timezone.localdate()
        # The screening may have lapsed or the facts changed since the order was written.
        _screening(locked.patient, locked.protocol_version, series=locked.series, today=today)
        inputs = order_inputs(locked)
        check = check_order(rules=rules_of(locked.protocol_version), weight=inputs.weight,
                            bag=inputs.bag, plan=inputs.plan, on=today)
        given = {o.quantity: o for o in _overrides(locked.overrides)}
        given.update({o.quantity: o for o in _overrides(overrides)})
        asking = {c.code for c in check.needs_confirmation}
        confirm = (set(locked.confirmed) | set(confirmed)) & asking
        acceptance = accept(check.limit_checks, check.cross_checks,
                            overrides=[o for o in given.values() if _exceeded(check, o.quantity)],
                            confirmed=sorted(confirm))
        if not acceptance.accepted:
            field, message = _refusal_text(acceptance)
            refusal = LimitRefusal(field, message, check=check, acceptance=acceptance)
        else:
            now = timezone.now()
            locked.status = Order.Status.SIGNED
            locked.signed_at, locked.signed_by = now, actor.user
            locked.signed_computed = {**check.to_dict(), "acceptance": acceptance.to_dict()}
            locked.save(update_fields=["status", "signed_at", "signed_by", "signed_computed"])
            OrderEvent.objects.create(order=locked, kind="signed", by=actor.require_user(),
                                      detail={"outcome": check.outcome.value})
            limit_event_record(actor=actor, acceptance=acceptance,
                               protocol_version=locked.protocol_version,
                               context=LimitEvent.Context.SIGN, order=locked)
            audit_record(actor=actor.at(locked.patient.site.code), action=AuditAction.ORDER_SIGN,
                         object_type="order", object_id=locked.pk,
                         detail={"patient": locked.patient_id,
                                 "outcome": check.outcome.value})
            return locked
    with transaction.atomic():
        limit_event_record(actor=actor, acceptance=refusal.acceptance,
                           protocol_version=order.protocol_version,
                           context=LimitEvent.Context.SIGN, order=order,
                           detail={"refused": True})
        audit_record(actor=actor.at(order.patient.site.code), action=AuditAction.ORDER_SIGN_REFUSED,
                     object_type="order", object_id=order.pk,
                     detail={"outcome": refusal.acceptance.outcome.value})
    raise refusal


def _concentration(text: str) -> Fraction:
    text = (text or "").strip()
    if not text:
        raise UsageError("concentration_mg_per_ml", "is required")
    try:  # a bare number is read in the field's unit
        return exact(text, field="concentration_mg_per_ml")
    except UsageError:
        return parse_concentration_mg_per_ml(text, field="concentration_mg_per_ml")


def _pump_rate(text: str) -> Fraction:
    text = (text or "").strip()
    if not text:
        raise UsageError("pump_rate_ml_per_h", "is required")
    try:
        number = exact(text, field="pump_rate_ml_per_h")
    except UsageError:
        rate = parse_rate(text, field="pump_rate_ml_per_h")
        if rate.form is not RateForm.ML_PER_H:
            raise UsageError("pump_rate_ml_per_h", f"{text!r} is not a pump rate: enter "
                                                   "what the pump is set to, in mL/h") from None
        number = rate.value
    return number


def order_verify(*, actor: Actor, order: Order, concentration_mg_per_ml: str,
                 pump_rate_ml_per_h: str) -> Order:
    """The independent double check: a second clinician (not the one who wrote or signed)
    enters the bag concentration and the first pump rate without seeing the order's.
    A mismatch is recorded and blocks; a match makes the order active."""
    _require(actor, Capability.VERIFY_ORDER, "verified_by",
             "only a physician or a nurse may verify an order")
    concentration = _concentration(concentration_mg_per_ml)
    pump = _pump_rate(pump_rate_ml_per_h)
    mismatch: Any = None
    with transaction.atomic():
        locked = _lock(order)
        if locked.status != Order.Status.SIGNED:
            raise UsageError("status", f"only a signed order awaits verification; this order "
                                       f"is {locked.get_status_display().lower()}")
        if actor.user is not None and actor.user.pk in (locked.signed_by_id,
                                                        locked.written_by_id):
            raise UsageError("verified_by", "the second check must be done by another "
                                            "clinician than the one who wrote or signed")
        result = double_check(order_check_of(locked), concentration_mg_per_ml=concentration,
                              pump_rate_ml_per_h=pump)
        if result.matches:
            locked.status = Order.Status.ACTIVE
            locked.verified_at, locked.verified_by = timezone.now(), actor.user
            locked.save(update_fields=["status", "verified_at", "verified_by"])
            OrderEvent.objects.create(order=locked, kind="verified", by=actor.require_user(),
                                      detail=result.to_dict())
            audit_record(actor=actor.at(locked.patient.site.code), action=AuditAction.ORDER_VERIFY,
                         object_type="order", object_id=locked.pk,
                         detail={"patient": locked.patient_id})
            return locked
        OrderEvent.objects.create(order=locked, kind="verification_mismatch",
                                  by=actor.require_user(), detail=result.to_dict())
        audit_record(actor=actor.at(locked.patient.site.code),
                     action=AuditAction.ORDER_VERIFY_MISMATCH,
                     object_type="order", object_id=locked.pk,
                     detail={"patient": locked.patient_id,
                             "fields": [m[0] for m in result.mismatches]})
        mismatch = result
    names = {"concentration_mg_per_ml": "bag concentration",
             "pump_rate_ml_per_h": "first pump rate"}
    fields = [m[0] for m in mismatch.mismatches]
    verb = "does" if len(fields) == 1 else "do"
    raise UsageError(fields[0], "the " + " and the ".join(names[f] for f in fields)
                     + f" you entered {verb} not match the signed order. The order stays "
                       "unverified: check the bag and your calculation with the prescriber.")


def _end(*, actor: Actor, order: Order, status: str, reason: str,
         allowed: Sequence[str]) -> Order:
    locked = _lock(order)
    if locked.status not in allowed:
        raise UsageError("status", f"this order is {locked.get_status_display().lower()}")
    locked.status = status
    locked.ended_at, locked.ended_by, locked.ended_reason = timezone.now(), actor.user, reason
    locked.save(update_fields=["status", "ended_at", "ended_by", "ended_reason"])
    OrderEvent.objects.create(order=locked, kind=status, by=actor.require_user(),
                              detail={"reason": reason})
    audit_record(actor=actor.at(locked.patient.site.code), action=AuditAction(f"order.{status}"),
                 object_type="order", object_id=locked.pk,
                 detail={"patient": locked.patient_id, "reason": reason})
    return locked


def order_discontinue(*, actor: Actor, order: Order, reason: str) -> Order:
    """Stop a draft, signed or active order, with a reason (it stays on record)."""
    _require(actor, Capability.DISCONTINUE_ORDER, "ended_by",
             "only a physician may discontinue an order")
    reason = required_text("reason", reason)
    with transaction.atomic():
        return _end(actor=actor, order=order, status=Order.Status.DISCONTINUED, reason=reason,
                    allowed=(Order.Status.DRAFT, Order.Status.SIGNED, Order.Status.ACTIVE))


def order_complete(*, actor: Actor, order: Order, note: str = "") -> Order:
    """Mark an active order's series as given in full."""
    _require(actor, Capability.DISCONTINUE_ORDER, "ended_by",
             "only a physician may complete an order")
    with transaction.atomic():
        done = _end(actor=actor, order=order, status=Order.Status.COMPLETED,
                    reason=note.strip(), allowed=(Order.Status.ACTIVE,))
        Series.objects.filter(pk=done.series_id, ended_at__isnull=True).update(
            ended_at=done.ended_at, ended_reason="order completed")
        return done


def order_change(*, actor: Actor, order: Order, change_reason: str, **new: Any) -> Order:
    """A change to an order: discontinue it and write a new draft that points back at it
    (one transaction; if the new order is refused, the old one stays as it was)."""
    return order_write(actor=actor, patient=order.patient,
                       protocol_version=order.protocol_version, replaces=order,
                       change_reason=change_reason, **new)

