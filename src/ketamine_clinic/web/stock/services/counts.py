"""Counts and what follows them: shift and biennial counts, inventories, discrepancies and
their resolution, and corrections of an entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.stock import EntryKind
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.stock.models import (
    ClinicDay,
    Container,
    Count,
    Discrepancy,
    DiscrepancyNote,
    Inventory,
    LedgerEntry,
)
from ketamine_clinic.web.stock.permissions import StockCapability
from ketamine_clinic.web.stock.services.bedside import _witness_check
from ketamine_clinic.web.stock.services.room import stock_loss_report
from ketamine_clinic.web.stock.services.writer import (
    Recorded,
    _append,
    _audit,
    _lock,
    _require,
    _require_site,
    _when,
    dec,
    fr,
    local_date,
    registration_of,
)

# --------------------------------------------------------------------------- counts


def stock_count(*, actor: Actor, site: Site, moment: str,
                counted_ml: Mapping[int, Any], occurred_at: datetime | None = None,
                inventory_kind: str = "", idempotency_key: str | None = None) -> Recorded[Count]:
    """A blind count: the counter says what is in each vial (mL; a sealed vial is its
    full volume, an opened one may be estimated); differences open discrepancies."""
    user = _require(actor.user, StockCapability.COUNT)
    _require_site(user, site)
    if idempotency_key and (done := Count.objects.filter(
            idempotency_key=idempotency_key).first()) is not None:
        return Recorded(done, replayed=True)
    try:
        when = core.CountMoment(moment)
    except ValueError as exc:
        raise UsageError("moment", "choose the opening, closing or a spot count") from exc
    if inventory_kind not in ("", "initial", "biennial", "other"):
        raise UsageError("inventory_kind", "choose initial, biennial or other")
    rules = core.load_rules()
    with transaction.atomic():
        locked = _lock(site)
        at = _when("occurred_at", occurred_at, locked.now)
        day, _ = ClinicDay.objects.select_for_update().get_or_create(
            site=site, day=local_date(site, at))
        new_state = core.check_count(core.DayState(day.state), when)
        vials = list(Container.objects.select_related("lot__product")
                     .filter(site=site, balance_mg__gt=0).order_by("label"))
        known = {v.pk for v in vials}
        extra = set(counted_ml) - known
        if extra:
            raise UsageError("counted", "a vial that is not in this site's stock was counted")
        lines, checked = [], []
        for v in vials:
            raw = counted_ml.get(v.pk)
            if raw in (None, ""):
                raise UsageError(f"counted_{v.pk}", f"enter what is in vial {v.label} "
                                                    "(0 if it is missing)")
            product = v.lot.product
            strength = fr(product.strength_mg_per_ml)
            found = core.mg_from_ml(raw, strength, field=f"counted_{v.pk}", allow_zero=True)
            if found > strength * fr(product.container_volume_ml):
                raise UsageError(f"counted_{v.pk}", f"vial {v.label} cannot hold that much")
            line = core.CountLine(v.label, fr(v.balance_mg), found,
                                  rules.measurement_tolerance_ml * strength)
            checked.append((v, line))
            lines.append({"container": v.pk, "label": v.label,
                          "expected_mg": str(line.expected_mg), "counted_mg": str(found),
                          "counted_ml": str(units.exact(raw, field=f"counted_{v.pk}")),
                          "matches": line.matches})
        mismatched = [(v, line) for v, line in checked if not line.matches]
        count = Count.objects.create(site=site, clinic_day=day, moment=when.value,
                                     counted_at=at, counted_by=user, lines=lines,
                                     mismatches=len(mismatched),
                                     idempotency_key=idempotency_key or None)
        for v, line in checked:
            _append(locked, kind=EntryKind.COUNT, user=user, product=v.lot.product,
                    quantity=line.counted_mg, occurred_at=at, container=v, count=count,
                    detail={"expected_mg": str(line.expected_mg), "moment": when.value})
        for v, line in mismatched:
            d = Discrepancy.objects.create(
                site=site, source="count", container=v, count=count, opened_at=locked.now,
                opened_by=user, expected_mg=dec(line.expected_mg), found_mg=dec(line.counted_mg),
                message=line.message(), detail={"moment": when.value, "rules": rules.version})
            _audit(actor, AuditAction.STOCK_DISCREPANCY_OPEN, d, {"container": v.label})
        if new_state.value != day.state:
            day.state = new_state.value
            day.save(update_fields=["state"])
        if inventory_kind:
            inventory_take(actor=actor, count=count, kind=inventory_kind, vials=vials,
                           counted=lines)
        _audit(actor, AuditAction.STOCK_COUNT, count, {"moment": when.value,
                                              "mismatches": len(mismatched)})
    return Recorded(count)


def inventory_take(*, actor: Actor, count: Count, kind: str, vials: Sequence[Container],
                   counted: Sequence[Mapping[str, Any]]) -> Inventory:
    """The inventory record of a count: what was counted, grouped per product and lot."""
    user = _require(actor.user, StockCapability.COUNT)
    site = count.site
    reg = registration_of(site)
    found = {int(line["container"]): Fraction(str(line["counted_mg"])) for line in counted}
    states = [core.ContainerState(
        product=v.lot.product.name, ndc=v.lot.product.ndc, form=v.lot.product.form,
        strength_mg_per_ml=fr(v.lot.product.strength_mg_per_ml),
        container_volume_ml=fr(v.lot.product.container_volume_ml), lot=v.lot.lot_number,
        expires_on=v.lot.expires_on, balance_mg=found.get(v.pk, Fraction(0)))
        for v in vials]
    on = local_date(site, count.counted_at)
    lines = core.inventory_lines(states, on=on)
    moment = "opening" if count.moment == "opening" else "close"
    inv = Inventory.objects.create(
        site=site, kind=kind, taken_on=on, taken_at=count.counted_at,
        business_moment=moment, taken_by=user, count=count,
        registrant={"name": reg.registrant_name if reg else site.name,
                    "address": reg.address if reg else site.address,
                    "dea_number": reg.dea_number if reg else ""},
        lines=[line.to_dict() for line in lines], rules_version=core.load_rules().version)
    _audit(actor, AuditAction.STOCK_INVENTORY, inv, {"kind": kind, "lines": len(lines)})
    return inv


# --------------------------------------------------------------------------- discrepancies


def discrepancy_act(*, actor: Actor, discrepancy: Discrepancy, event: str, note: str,
                    adjust: bool = False, loss_type: str = "") -> Discrepancy:
    """Explain, resolve (optionally adjusting the vial to what was found) or escalate to a
    loss case. Explaining is for whoever may count; resolving and escalating need the
    resolve capability."""
    try:
        ev = core.DiscrepancyEvent(event)
    except ValueError as exc:
        raise UsageError("event", "choose explain, resolve or escalate") from exc
    need = StockCapability.COUNT if ev is core.DiscrepancyEvent.EXPLAIN else \
        StockCapability.RESOLVE
    user = _require(actor.user, need)
    _require_site(user, discrepancy.site)
    with transaction.atomic():
        d = Discrepancy.objects.select_for_update().get(pk=discrepancy.pk)
        state = core.discrepancy_transition(core.DiscrepancyState(d.state), ev, note)
        DiscrepancyNote.objects.create(discrepancy=d, event=ev.value, note=note.strip(), by=user)
        shortfall = fr(d.expected_mg) - fr(d.found_mg)
        if ev is core.DiscrepancyEvent.RESOLVE and adjust:
            if d.container is None:
                raise UsageError("adjust", "only a vial's count can be adjusted; correct the "
                                           "session's entries instead")
            locked = _lock(d.site)
            vial = Container.objects.get(pk=d.container.pk)
            # Bring the vial to what the count found, from its balance now.
            diff = fr(d.found_mg) - (fr(d.expected_mg))
            if diff != 0:
                _append(locked, kind=EntryKind.ADJUST, user=user, product=vial.lot.product,
                        quantity=abs(diff), direction=1 if diff > 0 else -1,
                        occurred_at=locked.now, container=vial, discrepancy=d, note=note)
        if ev is core.DiscrepancyEvent.ESCALATE:
            items: list[tuple[Container, Any]] = []
            session_loss = None
            if shortfall <= 0:
                raise UsageError("event", "nothing is missing; explain and resolve instead")
            if d.container is not None:
                items = [(Container.objects.get(pk=d.container.pk), shortfall)]
            elif d.session is not None:
                session_loss = (d.session, shortfall)
            case = stock_loss_report(
                actor=actor, site=d.site, loss_type=loss_type or "other",
                discovered_at=timezone.now(), items=items, description=note,
                discrepancy=d, session_loss=session_loss)
            d.loss_case = case
        d.state = state.value
        d.save(update_fields=["state", "loss_case"])
        _audit(actor, AuditAction(f"stock.discrepancy_{ev.value}"), d, {"state": state.value})
    return d


# --------------------------------------------------------------------------- corrections


CORRECTABLE = (EntryKind.DRAW, EntryKind.WASTE, EntryKind.RETURN)


def stock_entry_correct(*, actor: Actor, entry: LedgerEntry, quantity_mg: Any, reason: str,
                        witness: User | None = None) -> LedgerEntry:
    """A new entry that corrects ``entry``'s amount (0 = entered in error); the original
    stays. A corrected waste is witnessed again."""
    user = _require(actor.user, StockCapability.DRAW)
    kind = EntryKind(entry.kind)
    if kind not in CORRECTABLE:
        raise UsageError("entry", "only draws, wastes and returns are corrected this way; "
                                  "counts open discrepancies, receipts are adjusted by one")
    if not reason.strip():
        raise UsageError("reason", "say why the entry is corrected")
    if entry.corrections.exists():
        raise UsageError("entry", "this entry was already corrected; correct the correction")
    amount = core.quantity_mg(quantity_mg, field="quantity_mg", allow_zero=True)
    if kind is EntryKind.WASTE:
        _witness_check(user, [witness], kind, entry.site)
    with transaction.atomic():
        locked = _lock(entry.site)
        fixed = _append(locked, kind=kind, user=user, product=entry.product, quantity=amount,
                        occurred_at=entry.occurred_at, container=entry.container,
                        session=entry.session, witness=witness if kind is EntryKind.WASTE
                        else None, corrects=entry, correction_reason=reason.strip())
        _audit(actor, AuditAction.STOCK_CORRECT, fixed, {"corrects": entry.pk, "mg": str(amount)})
    return fixed
