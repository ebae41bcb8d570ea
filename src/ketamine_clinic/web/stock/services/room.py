"""The stock room: transfers between sites, witnessed destruction, and theft or loss reports
with their case record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
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
    Container,
    Discrepancy,
    LedgerEntry,
    LossCase,
    LossCaseEvent,
)
from ketamine_clinic.web.stock.permissions import StockCapability
from ketamine_clinic.web.stock.services.bedside import _session_product, _witness_check
from ketamine_clinic.web.stock.services.writer import (
    Recorded,
    _append,
    _audit,
    _lock,
    _lock_sites,
    _replayed,
    _require,
    _require_site,
    _when,
    dec,
    fr,
    local_date,
    registration_of,
)

# --------------------------------------------------------------------------- stock room


def stock_transfer(*, actor: Actor, container: Container, to_site: Site,
                   invoice_number: str, occurred_at: datetime | None = None,
                   idempotency_key: str | None = None) -> Recorded[LedgerEntry]:
    """Move a whole vial to another registered site (an invoice; no Form 222 for CIII)."""
    user = _require(actor.user, StockCapability.DESTROY)
    _require_site(user, container.site)
    if (done := _replayed(idempotency_key)) is not None:
        return done
    from_site = container.site
    to_reg, from_reg = registration_of(to_site), registration_of(from_site)
    core.check_transfer(to_registration=to_reg.dea_number if to_reg else "",
                        from_registration=from_reg.dea_number if from_reg else "")
    assert to_reg is not None
    assert from_reg is not None
    if not invoice_number.strip():
        raise UsageError("invoice_number", "a transfer is recorded on an invoice")
    with transaction.atomic():
        locks = _lock_sites(from_site, to_site)
        out_lock = locks[from_site.pk]
        at = _when("occurred_at", occurred_at, out_lock.now)
        container.refresh_from_db()
        amount = fr(container.balance_mg)
        if amount <= 0:
            raise UsageError("container", f"vial {container.label} is empty")
        product = container.lot.product
        detail = {"invoice_number": invoice_number.strip(), "from_dea": from_reg.dea_number,
                  "to_dea": to_reg.dea_number, "lot_number": container.lot.lot_number}
        out = _append(out_lock, kind=EntryKind.TRANSFER_OUT, user=user, product=product,
                      quantity=amount, occurred_at=at, container=container,
                      other_site=to_site, detail=detail, idempotency_key=idempotency_key)
        container.refresh_from_db()
        container.site = to_site
        container.save(update_fields=["site"])
        _append(locks[to_site.pk], kind=EntryKind.TRANSFER_IN, user=user, product=product,
                quantity=amount, occurred_at=at, container=container, other_site=from_site,
                detail=detail)
        _audit(actor, AuditAction.STOCK_TRANSFER, out, {"to": to_site.code, "mg": str(amount)})
    return Recorded(out)


FORM_41_METHODS = ("on_site", "reverse_distributor")


def stock_destroy(*, actor: Actor, container: Container, method: str,
                  witnesses: Sequence[User | None] = (), manner: str = "", place: str = "",
                  reverse_distributor: Mapping[str, str] | None = None,
                  occurred_at: datetime | None = None,
                  idempotency_key: str | None = None) -> Recorded[LedgerEntry]:
    """Destroy what is left of a vial: on site (DEA Form 41, two witnesses) or handed to a
    reverse distributor (who files Form 41; its name, address, DEA number and invoice)."""
    user = _require(actor.user, StockCapability.DESTROY)
    _require_site(user, container.site)
    if (done := _replayed(idempotency_key)) is not None:
        return done
    if method not in FORM_41_METHODS:
        raise UsageError("method", "choose on site destruction or a reverse distributor")
    on_site = method == "on_site"
    present = _witness_check(user, list(witnesses), EntryKind.DESTROY, container.site,
                             on_site=on_site)
    rd: dict[str, str] = {}
    if on_site:
        if not manner.strip():
            raise UsageError("manner", "say how it was made non-retrievable")
    else:
        rd = {k: (reverse_distributor or {}).get(k, "").strip()
              for k in ("name", "address", "dea_number", "invoice_number")}
        for k, v in rd.items():
            if not v:
                raise UsageError(f"reverse_distributor.{k}", "is required")
        rd["dea_number"] = core.check_dea_number(rd["dea_number"],
                                                 field="reverse_distributor.dea_number")
    with transaction.atomic():
        locked = _lock(container.site)
        at = _when("occurred_at", occurred_at, locked.now)
        container.refresh_from_db()
        amount = fr(container.balance_mg)
        if amount <= 0:
            raise UsageError("container", f"vial {container.label} is empty")
        product, lot = container.lot.product, container.lot
        strength = fr(product.strength_mg_per_ml)
        sealed = not container.opened
        form_41 = {
            "ndc": product.ndc, "batch": lot.lot_number, "name": product.name,
            "strength": f"{product.strength_mg_per_ml.normalize():f} mg/mL",
            "form": product.form,
            "package_quantity": f"{product.container_volume_ml.normalize():f} mL",
            "full_packages": 1 if sealed else 0,
            "partial_count_ml": "0" if sealed else str(units.volume_ml(amount, strength)),
            "total_destroyed_mg": str(amount), "method": method, "manner": manner.strip(),
            "place": place.strip(), "date": local_date(container.site, at).isoformat(),
            "witnesses": [w.display_name for w in present], "reverse_distributor": rd,
        }
        entry = _append(locked, kind=EntryKind.DESTROY, user=user, product=product,
                        quantity=amount, occurred_at=at, container=container,
                        witness=present[0] if present else None,
                        second_witness=present[1] if len(present) > 1 else None,
                        detail={"form_41": form_41}, idempotency_key=idempotency_key)
        _audit(actor, AuditAction.STOCK_DESTROY, entry, {"method": method, "mg": str(amount)})
    return Recorded(entry)


def stock_loss_report(*, actor: Actor, site: Site, loss_type: str, discovered_at: datetime,
                      items: Sequence[tuple[Container, Any]], description: str,
                      police_notified: bool = False, police_department: str = "",
                      police_phone: str = "", purchase_value_usd: Any = None,
                      measures_taken: str = "", discrepancy: Discrepancy | None = None,
                      session_loss: tuple[Any, Fraction] | None = None) -> LossCase:
    """Theft or significant loss: the LOSS entries and a case with its deadlines."""
    user = _require(actor.user, StockCapability.DESTROY if discrepancy is None
                    else StockCapability.RESOLVE)
    _require_site(user, site)
    rules = core.load_rules()
    core.check_loss_type(loss_type, rules)
    if not description.strip():
        raise UsageError("description", "describe what was found missing and how")
    if police_notified and not police_department.strip():
        raise UsageError("police_department", "name the police department notified")
    if not items and session_loss is None:
        raise UsageError("items", "list at least one vial and the amount missing")
    # The holiday calendars are large; loaded only for a loss report's business-day deadline.
    import holidays

    with transaction.atomic():
        locked = _lock(site)
        at = _when("discovered_at", discovered_at, locked.now)
        found_on = local_date(site, at)
        federal = holidays.country_holidays("US", years=range(found_on.year,
                                                             found_on.year + 2))
        deadlines = core.loss_deadlines(found_on, holidays=federal, rules=rules)
        since = core.add_years(found_on, -rules.form_106_history_years)
        prior = LossCase.objects.filter(site=site, discovered_at__date__gte=since).count()
        amounts = [(c, core.quantity_mg(q, field=f"items[{i}].quantity_mg"))
                   for i, (c, q) in enumerate(items)]
        total = sum((q for _, q in amounts), Fraction(0))
        if session_loss is not None:
            total += session_loss[1]
        case = LossCase.objects.create(
            site=site, opened_by=user, discovered_at=at, loss_type=loss_type,
            is_theft=loss_type not in ("lost in transit", "other"),
            quantity_mg=dec(total), police_notified=police_notified,
            police_department=police_department.strip(), police_phone=police_phone.strip(),
            purchase_value_usd=(None if purchase_value_usd in (None, "")
                                else Decimal(str(purchase_value_usd))),
            measures_taken=measures_taken.strip(), description=description.strip(),
            notice_due_on=deadlines.notice_due_on, form_106_due_on=deadlines.form_106_due_on,
            deadline_inputs={**deadlines.to_dict(), "rules": rules.version,
                             "calendar": "US federal holidays",
                             "prior_thefts_or_losses": prior, "prior_since": since.isoformat()})
        for c, q in amounts:
            if c.site_id != site.pk:
                raise UsageError("items", f"vial {c.label} is not at {site.name}")
            _append(locked, kind=EntryKind.LOSS, user=user, product=c.lot.product, quantity=q,
                    occurred_at=at, container=c, loss_case=case, discrepancy=discrepancy,
                    detail={"loss_type": loss_type})
        if session_loss is not None:
            session, q = session_loss
            _append(locked, kind=EntryKind.LOSS, user=user, product=_session_product(session),
                    quantity=q, occurred_at=at, session=session, from_custody=True,
                    loss_case=case, discrepancy=discrepancy, detail={"loss_type": loss_type})
        _audit(actor,
               AuditAction.STOCK_LOSS_REPORT, case, {"mg": str(total), **deadlines.to_dict()})
    return case


def loss_case_record(*, actor: Actor, case: LossCase, kind: str, at: datetime | None = None,
                     reference: str = "", note: str = "") -> LossCaseEvent:
    """The notice sent to the DEA field division, Form 106 filed, or a note."""
    user = _require(actor.user, StockCapability.RESOLVE)
    if kind not in ("notice_sent", "form_106_filed", "note"):
        raise UsageError("kind", "choose notice sent, Form 106 filed or a note")
    if kind != "note" and not reference.strip():
        raise UsageError("reference", "enter how it was sent (e.g. the DEA confirmation number)")
    if kind == "note" and not note.strip():
        raise UsageError("note", "write the note")
    with transaction.atomic():
        case = LossCase.objects.select_for_update().get(pk=case.pk)
        now = timezone.now()
        event = LossCaseEvent.objects.create(case=case, kind=kind, at=at or now, by=user,
                                             reference=reference.strip(), note=note.strip())
        kinds = set(case.events.values_list("kind", flat=True))
        state = ("filed" if "form_106_filed" in kinds
                 else "notified" if "notice_sent" in kinds else "open")
        if state != case.state:
            case.state = state
            case.save(update_fields=["state"])
        _audit(actor, AuditAction.STOCK_LOSS_CASE_EVENT, case, {"kind": kind})
    return event
