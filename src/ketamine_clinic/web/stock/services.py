"""Writing the controlled-substance record. Every function runs in one transaction, takes
the site's chain lock first (so balances are computed from a settled ledger and two
writers queue), decides through ``clinical.stock`` and raises ``UsageError`` (nothing
recorded) when it refuses."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.clinical import clock, units
from ketamine_clinic.clinical import stock as core
from ketamine_clinic.clinical.bedside.model import RecordHold
from ketamine_clinic.clinical.stock import EntryKind
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit import anchor
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_key, audit_record
from ketamine_clinic.web.sessions.hooks import RecordLink
from ketamine_clinic.web.stock import chart
from ketamine_clinic.web.stock.models import (
    ChainHead,
    ClinicDay,
    Container,
    Count,
    Discrepancy,
    DiscrepancyNote,
    Inventory,
    LedgerEntry,
    LossCase,
    LossCaseEvent,
    Lot,
    Product,
    Receipt,
    Registration,
    StockGrant,
)
from ketamine_clinic.web.stock.permissions import DEFAULT_GRANTS, StockCapability, stock_can


def fr(value: Decimal | None) -> Fraction:
    return Fraction(0) if value is None else Fraction(str(value))


def dec(value: Fraction) -> Decimal:
    return core.ledger_mg(value)


def _require(user: User | None, capability: StockCapability, who: str = "you") -> User:
    if user is None or not stock_can(user, capability):
        name = "You" if who == "you" else who
        raise UsageError("permission", f"{name} may not {capability.label.lower()} "
                                       "(set by the clinic administrator on Stock settings)")
    return user


def _require_site(user: User, site: Site) -> None:
    if not user.sites.filter(pk=site.pk).exists():
        raise UsageError("site", f"you do not work at {site.name}")


def registration_of(site: Site) -> Registration | None:
    return Registration.objects.filter(site=site).first()


def local_date(site: Site, at: datetime) -> date:
    return timezone.localtime(at, ZoneInfo(site.time_zone)).date()


def ensure_default_grants() -> None:
    """The default role grants (a fresh database gets them from migration 0002)."""
    for capability, roles in DEFAULT_GRANTS.items():
        for role in roles:
            StockGrant.objects.get_or_create(role=str(role), capability=str(capability))


# --------------------------------------------------------------------------- the writer


@dataclass
class _Locked:
    site: Site
    head: ChainHead
    now: datetime


def _chain_key() -> bytes:
    """The ledger's chain key: derived from the audit trail's key (kept outside the
    database, see docs/audit.md), separated from the audit's own use by its label."""
    return hmac.new(audit_key(), b"stock-ledger-chain", hashlib.sha256).digest()


def _lock(site: Site) -> _Locked:
    ChainHead.objects.get_or_create(site=site, defaults={"hash": core.GENESIS_HASH})
    head = ChainHead.objects.select_for_update().get(site=site)
    return _Locked(site, head, timezone.now())


def _lock_sites(*sites: Site) -> dict[int, _Locked]:
    """Lock several sites' chains in a fixed order (no deadlock between two transfers)."""
    return {s.pk: _lock(s) for s in sorted(sites, key=lambda s: s.pk)}


def _replayed(key: str | None) -> LedgerEntry | None:
    if not key:
        return None
    found = LedgerEntry.objects.filter(idempotency_key=key).first()
    if found is not None:
        found.replayed = True
    return found


def _site_balance(site: Site, product: Product) -> Fraction:
    total = (Container.objects.filter(site=site, lot__product=product)
             .aggregate(t=Sum("balance_mg"))["t"])
    return fr(total)


def custody_mg(session: Any) -> Fraction:
    total = (LedgerEntry.objects.filter(session=session)
             .aggregate(t=Sum("custody_delta_mg"))["t"])
    return fr(total)


def _when(field: str, at: datetime | None, now: datetime) -> datetime:
    at = at or now
    clock.aware(field, at)
    core.check_times(at, now)
    return at


def _append(locked: _Locked, *, kind: EntryKind, user: User, product: Product,
            quantity: Fraction, occurred_at: datetime, container: Container | None = None,
            session: Any = None, witness: User | None = None,
            second_witness: User | None = None, direction: int = 1,
            from_custody: bool = False, corrects: LedgerEntry | None = None,
            correction_reason: str = "", receipt: Receipt | None = None,
            count: Count | None = None, discrepancy: Discrepancy | None = None,
            loss_case: LossCase | None = None, other_site: Site | None = None,
            detail: dict[str, Any] | None = None, note: str = "",
            idempotency_key: str | None = None) -> LedgerEntry:
    """Append one entry to the locked site's chain and move the container cache."""
    rules = core.load_rules()
    change = core.deltas(kind, quantity, direction=direction, from_custody=from_custody)
    if corrects is not None:
        # What the corrected entry moved: its own amount (for a correction of a correction,
        # the amount it set, not its net effect).
        original = core.deltas(EntryKind(corrects.kind), fr(corrects.quantity_mg))
        change = core.correction_effect(original, change)
    if container is not None:
        container = Container.objects.select_for_update().get(pk=container.pk)
    before = core.Balances(
        container_mg=fr(container.balance_mg) if container else Fraction(0),
        site_mg=_site_balance(locked.site, product),
        custody_mg=custody_mg(session) if session is not None else Fraction(0))
    after = core.post(before, change,
                      container_label=f"vial {container.label}" if container else "the vial")
    head = locked.head
    entry = LedgerEntry(
        site=locked.site, seq=head.seq + 1, kind=kind.value, product=product,
        container=container, session=session,
        patient=session.patient if session is not None else None,
        occurred_at=occurred_at, recorded_at=locked.now,
        late=core.is_late(occurred_at, locked.now, rules), recorded_by=user,
        witness=witness, second_witness=second_witness, quantity_mg=dec(quantity),
        container_delta_mg=dec(change.container_mg), custody_delta_mg=dec(change.custody_mg),
        container_balance_mg=dec(after.container_mg) if container else None,
        site_balance_mg=dec(after.site_mg),
        custody_balance_mg=dec(after.custody_mg) if session is not None else None,
        corrects=corrects, correction_reason=correction_reason, receipt=receipt, count=count,
        discrepancy=discrepancy, loss_case=loss_case, other_site=other_site,
        detail=detail or {}, note=note, idempotency_key=idempotency_key or None,
        prev_hash=head.hash)
    # Round-trip the stored values so the hash is of what the database will hold.
    entry.hash = core.ledger_hash(entry.prev_hash, entry.chain_content(), _chain_key())
    entry.save()
    head.seq, head.hash = entry.seq, entry.hash
    head.save(update_fields=["seq", "hash"])
    if container is not None and change.container_mg != 0:
        container.balance_mg = dec(after.container_mg)
        if change.container_mg < 0:
            container.opened = True
        container.save(update_fields=["balance_mg", "opened"])
    return entry


def _audit(actor: Actor, action: AuditAction, obj: Any, detail: dict[str, Any]) -> None:
    audit_record(actor=actor, action=action, object_type=type(obj).__name__.lower(),
                 object_id=obj.pk, detail=detail)


# --------------------------------------------------------------------------- set-up


def registration_save(*, actor: Actor, site: Site, dea_number: str, registrant_name: str,
                      address: str, expires_on: date, retention_years: int | None = None,
                      state_rule_note: str = "") -> Registration:
    user = _require(actor.user, StockCapability.MANAGE)
    number = core.check_dea_number(dea_number)
    years = core.retention_years(retention_years, core.load_rules())
    for name, value in (("registrant_name", registrant_name), ("address", address)):
        if not value.strip():
            raise UsageError(name, "is required on every DEA record")
    with transaction.atomic():
        reg, created = Registration.objects.update_or_create(site=site, defaults={
            "dea_number": number, "registrant_name": registrant_name.strip(),
            "address": address.strip(), "expires_on": expires_on,
            "retention_years": None if retention_years is None else years,
            "state_rule_note": state_rule_note.strip()})
        _audit(actor, AuditAction.STOCK_REGISTRATION_SAVE, reg,
               {"dea_number": number, "created": created, "by": user.get_username()})
    return reg


def product_create(*, actor: Actor, ndc: str, name: str, strength_mg_per_ml: str,
                   container_volume_ml: str, form: str = "injectable solution",
                   rxnorm: str = "") -> Product:
    _require(actor.user, StockCapability.MANAGE)
    strength = core.quantity_mg(strength_mg_per_ml, field="strength_mg_per_ml")
    volume = core.quantity_mg(container_volume_ml, field="container_volume_ml")
    if not ndc.strip():
        raise UsageError("ndc", "is required")
    with transaction.atomic():
        product = Product.objects.create(
            ndc=ndc.strip(), name=name.strip() or "Ketamine hydrochloride", form=form,
            strength_mg_per_ml=dec(strength), container_volume_ml=dec(volume), rxnorm=rxnorm)
        _audit(actor, AuditAction.STOCK_PRODUCT_CREATE, product, {"ndc": product.ndc})
    return product


def grants_set(*, actor: Actor, grants: Mapping[str, Sequence[str]]) -> None:
    """Replace the role grants: ``{capability: [role, ...]}``. A clinic keeps at least one
    role that may manage them."""
    user = _require(actor.user, StockCapability.MANAGE)
    known = {c.value for c in StockCapability}
    for cap in grants:
        if cap not in known:
            raise UsageError("capability", f"unknown capability {cap!r}")
    if not grants.get(StockCapability.MANAGE):
        raise UsageError("manage", "at least one role must keep the right to manage permissions")
    with transaction.atomic():
        before = sorted(StockGrant.objects.values_list("capability", "role"))
        StockGrant.objects.all().delete()
        for cap, roles in grants.items():
            for role in roles:
                StockGrant.objects.create(role=role, capability=cap, granted_by=user)
        after = sorted(StockGrant.objects.values_list("capability", "role"))
        audit_record(actor=actor, action=AuditAction.STOCK_GRANTS_SET, object_type="stockgrant",
                     detail={"before": before, "after": after})
    user.__dict__.pop("_stock_grants", None)


# --------------------------------------------------------------------------- receive


def stock_receive(*, actor: Actor, site: Site, product: Product, lot_number: str,
                  expires_on: date, containers: int, supplier_name: str,
                  supplier_address: str, supplier_dea_number: str, invoice_number: str,
                  received_on: date, note: str = "",
                  idempotency_key: str | None = None) -> Receipt:
    """A shipment: one RECEIVE entry per numbered vial, on the date actually received."""
    user = _require(actor.user, StockCapability.RECEIVE)
    _require_site(user, site)
    if (done := _replayed(idempotency_key)) is not None:
        assert done.receipt is not None
        done.receipt.replayed = True  # type: ignore[attr-defined]
        return done.receipt
    reg = registration_of(site)
    if reg is None:
        raise UsageError("site", f"{site.name} has no DEA registration on file; it may not "
                                 "hold controlled substances")
    supplier_dea = core.check_dea_number(supplier_dea_number, field="supplier_dea_number")
    for name, value in (("supplier_name", supplier_name), ("supplier_address", supplier_address),
                        ("invoice_number", invoice_number), ("lot_number", lot_number)):
        if not value.strip():
            raise UsageError(name, "is required")
    if containers < 1:
        raise UsageError("containers", "must be at least 1")
    with transaction.atomic():
        locked = _lock(site)
        today = local_date(site, locked.now)
        if received_on > today:
            raise UsageError("received_on", "is in the future; enter the date it arrived")
        if expires_on < received_on:
            raise UsageError("expires_on", f"lot {lot_number} expired on {expires_on}; "
                                           "refuse the shipment or record it for destruction")
        lot, _ = Lot.objects.get_or_create(product=product, lot_number=lot_number.strip(),
                                           defaults={"expires_on": expires_on})
        if lot.expires_on != expires_on:
            raise UsageError("expires_on", f"lot {lot.lot_number} is on record as expiring "
                                           f"{lot.expires_on}; check the vial label")
        receipt = Receipt.objects.create(
            site=site, supplier_name=supplier_name.strip(),
            supplier_address=supplier_address.strip(), supplier_dea_number=supplier_dea,
            invoice_number=invoice_number.strip(), received_on=received_on, received_by=user,
            containers_confirmed=containers, note=note)
        content = fr(product.strength_mg_per_ml) * fr(product.container_volume_ml)
        # The date actually received [CFR-1304.21]; a late entry is dated midday that day.
        occurred = locked.now if received_on == today else datetime.combine(
            received_on, datetime.min.time().replace(hour=12), tzinfo=ZoneInfo(site.time_zone))
        numbered = Container.objects.filter(site=site).count()
        prefix = site.code.upper()[:6]
        for i in range(containers):
            label = _next_label(prefix, numbered + i + 1)
            vial = Container.objects.create(lot=lot, site=site, receipt=receipt, label=label,
                                            balance_mg=Decimal(0))
            _append(locked, kind=EntryKind.RECEIVE, user=user, product=product,
                    quantity=content, occurred_at=occurred, container=vial, receipt=receipt,
                    detail={"supplier_dea_number": supplier_dea,
                            "invoice_number": receipt.invoice_number,
                            "lot_number": lot.lot_number,
                            "expires_on": lot.expires_on.isoformat()},
                    idempotency_key=(f"{idempotency_key}:{i}" if i and idempotency_key
                                     else idempotency_key))
        _audit(actor, AuditAction.STOCK_RECEIVE, receipt, {"containers": containers,
                                                  "lot": lot.lot_number})
    return receipt


def _next_label(prefix: str, n: int) -> str:
    label = f"{prefix}-{n:04d}"
    while Container.objects.filter(label=label).exists():
        n += 1
        label = f"{prefix}-{n:04d}"
    return label


# --------------------------------------------------------------------------- bedside


def _open_day_required(site: Site, at: datetime) -> None:
    if not core.load_rules().draw_requires_open_day:
        return
    day = ClinicDay.objects.filter(site=site, day=local_date(site, at)).first()
    state = day.state if day else core.DayState.NOT_OPENED.value
    if state != core.DayState.OPEN.value:
        why = "is closed" if state == "closed" else "has not been opened"
        raise UsageError("day", f"the clinic day {why}: the opening count confirms the "
                                "balances before the first draw")


def _session_site_check(session: Any, container: Container) -> None:
    if container.site_id != session.site_id:
        raise UsageError("container", f"vial {container.label} is not at this session's site")
    if chart.session_is_closed(session):
        raise UsageError("session", "the session is closed; nothing more can be drawn for it")


def stock_draw(*, actor: Actor, session: Any, container: Container,
               volume_ml: Any = None, quantity_mg: Any = None,
               occurred_at: datetime | None = None,
               idempotency_key: str | None = None) -> LedgerEntry:
    """Draw from a vial into the session's bag (the whole vial unless a volume is given)."""
    user = _require(actor.user, StockCapability.DRAW)
    _require_site(user, session.site)
    if (done := _replayed(idempotency_key)) is not None:
        return done
    product = container.lot.product
    strength = fr(product.strength_mg_per_ml)
    with transaction.atomic():
        locked = _lock(session.site)
        at = _when("occurred_at", occurred_at, locked.now)
        container.refresh_from_db()
        _session_site_check(session, container)
        _open_day_required(session.site, at)
        if volume_ml not in (None, ""):
            amount = core.mg_from_ml(volume_ml, strength, field="volume_ml")
        elif quantity_mg not in (None, ""):
            amount = core.quantity_mg(quantity_mg, field="quantity_mg")
        else:
            amount = fr(container.balance_mg)
        core.check_draw(core.ContainerFacts(f"vial {container.label}", fr(container.balance_mg),
                                            container.lot.expires_on),
                        amount, on=local_date(session.site, at))
        entry = _append(locked, kind=EntryKind.DRAW, user=user, product=product,
                        quantity=amount, occurred_at=at, container=container, session=session,
                        detail={"lot_number": container.lot.lot_number,
                                "volume_ml": str(units.volume_ml(amount, strength))},
                        idempotency_key=idempotency_key)
        _audit(actor, AuditAction.STOCK_DRAW, entry, {"session": session.pk, "mg": str(amount)})
    return entry


def _witness_check(user: User, witnesses: Sequence[User | None], kind: EntryKind,
                   site: Site, on_site: bool = True) -> list[User]:
    present = [w for w in witnesses if w is not None]
    core.check_witnesses(kind, recorded_by=user.pk, witnesses=[w.pk for w in present],
                         rules=core.load_rules(), on_site=on_site)
    for w in present:
        _require(w, StockCapability.WITNESS, who=w.display_name)
        if not w.sites.filter(pk=site.pk).exists():
            raise UsageError("witness", f"{w.display_name} does not work at {site.name}")
    return present


def stock_waste(*, actor: Actor, session: Any, witness: User | None,
                quantity_mg: Any = None, volume_ml: Any = None,
                occurred_at: datetime | None = None, note: str = "",
                idempotency_key: str | None = None) -> LedgerEntry:
    """Waste what was drawn and not given, co-signed by a second authorised person.

    A volume is of the bag (at the ordered concentration)."""
    user = _require(actor.user, StockCapability.DRAW)
    _require_site(user, session.site)
    if (done := _replayed(idempotency_key)) is not None:
        return done
    _witness_check(user, [witness], EntryKind.WASTE, session.site)
    if volume_ml not in (None, ""):
        amount = core.mg_from_ml(volume_ml, chart.bag_concentration_mg_per_ml(session),
                                 field="volume_ml")
    else:
        amount = core.quantity_mg(quantity_mg, field="quantity_mg")
    with transaction.atomic():
        locked = _lock(session.site)
        at = _when("occurred_at", occurred_at, locked.now)
        product = _session_product(session)
        entry = _append(locked, kind=EntryKind.WASTE, user=user, product=product,
                        quantity=amount, occurred_at=at, session=session, witness=witness,
                        note=note, detail={"witness": witness.get_username() if witness else ""},
                        idempotency_key=idempotency_key)
        _audit(actor, AuditAction.STOCK_WASTE, entry, {"session": session.pk, "mg": str(amount),
                                              "witness": entry.witness_id})
    return entry


def _session_product(session: Any) -> Product:
    draw = (LedgerEntry.objects.filter(session=session, kind=EntryKind.DRAW.value)
            .select_related("product").first())
    if draw is None:
        raise UsageError("session", "nothing has been drawn for this session")
    return draw.product


def stock_return(*, actor: Actor, session: Any, container: Container,
                 quantity_mg: Any = None, occurred_at: datetime | None = None,
                 idempotency_key: str | None = None) -> LedgerEntry:
    """Return a drawn vial, unused, to stock (the amount drawn from it unless given)."""
    user = _require(actor.user, StockCapability.DRAW)
    _require_site(user, session.site)
    if (done := _replayed(idempotency_key)) is not None:
        return done
    with transaction.atomic():
        locked = _lock(session.site)
        at = _when("occurred_at", occurred_at, locked.now)
        drawn = fr(LedgerEntry.objects.filter(session=session, container=container)
                   .aggregate(t=Sum("container_delta_mg"))["t"])
        if drawn >= 0:
            raise UsageError("container", f"nothing was drawn from vial {container.label} "
                                          "for this session")
        amount = (core.quantity_mg(quantity_mg, field="quantity_mg")
                  if quantity_mg not in (None, "") else -drawn)
        if amount > -drawn:
            raise UsageError("quantity_mg", f"only {core.show_mg(-drawn)} was drawn from "
                                            f"vial {container.label} for this session")
        entry = _append(locked, kind=EntryKind.RETURN, user=user,
                        product=container.lot.product, quantity=amount, occurred_at=at,
                        container=container, session=session, idempotency_key=idempotency_key)
        _audit(actor, AuditAction.STOCK_RETURN, entry, {"session": session.pk, "mg": str(amount)})
    return entry


def session_totals(session: Any) -> dict[str, Fraction]:
    """Drawn, administered (booked), wasted and returned [mg] for a session, from the
    ledger (corrections included: every entry's deltas add up)."""
    sums = dict(LedgerEntry.objects.filter(session=session).values("kind")
                .annotate(t=Sum("custody_delta_mg")).values_list("kind", "t"))
    # Custody deltas carry their sign (a correction that lowers a waste adds back).
    return {"drawn": fr(sums.get("draw")), "administered": -fr(sums.get("administer")),
            "wasted": -fr(sums.get("waste")), "returned": -fr(sums.get("return")),
            "lost": -fr(sums.get("loss"))}


@dataclass(frozen=True)
class SessionStock:
    reconciliation: core.Reconciliation
    charted: chart.ChartedDose
    totals: dict[str, Fraction]
    open_discrepancy: Discrepancy | None

    @property
    def can_close(self) -> bool:
        """The bedside may close the session: reconciled, and nothing left open."""
        return self.reconciliation.reconciled and self.open_discrepancy is None


def session_stock(session: Any, *, now: datetime | None = None) -> SessionStock:
    """The session's reconciliation as of now: given from the chart, never typed."""
    charted = chart.charted_dose(session, now=now)
    totals = session_totals(session)
    rec = core.reconcile(drawn_mg=totals["drawn"], given_mg=charted.given_mg,
                         wasted_mg=totals["wasted"], returned_mg=totals["returned"] +
                         totals["lost"], tolerance_mg=_tolerance(session))
    open_d = (Discrepancy.objects.filter(session=session, state__in=("open", "explained"))
              .first())
    return SessionStock(rec, charted, totals, open_d)


def _tolerance(session: Any) -> Fraction:
    strengths = [fr(s) for s in LedgerEntry.objects.filter(
        session=session, kind="draw").values_list("product__strength_mg_per_ml", flat=True)]
    strengths.append(chart.bag_concentration_mg_per_ml(session))
    return core.load_rules().measurement_tolerance_ml * max(strengths)


def stock_session_reconcile(*, actor: Actor, session: Any, close: bool = False,
                            now: datetime | None = None) -> SessionStock:
    """Book the charted dose as ADMINISTER (only what is not booked yet; a chart corrected
    downwards is corrected here too) and reconcile. With ``close``, a difference beyond
    the tolerance opens a discrepancy instead of letting the session close."""
    user = _require(actor.user, StockCapability.DRAW)
    with transaction.atomic():
        locked = _lock(session.site)
        charted = chart.charted_dose(session, now=now)
        if close and charted.status in ("running", "paused"):
            raise UsageError("session", "stop the infusion before reconciling its ketamine")
        booked = session_totals(session)["administered"]
        given = Fraction(dec(charted.given_mg))
        change = given - booked
        if change != 0 and LedgerEntry.objects.filter(session=session, kind="draw").exists():
            at = charted.as_of or locked.now
            detail = {"charted": charted.inputs, "given_mg": str(charted.given_mg)}
            # The booking cannot take more than the session holds: a chart that says more
            # was given than drawn is over-accounted, which the reconciliation reports.
            change = min(change, custody_mg(session)) if change > 0 else change
            if change > 0:
                _append(locked, kind=EntryKind.ADMINISTER, user=user,
                        product=_session_product(session), quantity=change,
                        occurred_at=min(at, locked.now), session=session, detail=detail)
            remaining = -change  # the chart was corrected downwards: correct the bookings
            for previous in (LedgerEntry.objects.filter(
                    session=session, kind="administer", corrections__isnull=True)
                    .order_by("-seq")):
                if remaining <= 0:
                    break
                booked_here = fr(previous.quantity_mg)
                cut = min(booked_here, remaining)
                _append(locked, kind=EntryKind.ADMINISTER, user=user, product=previous.product,
                        quantity=booked_here - cut, occurred_at=min(at, locked.now),
                        session=session, corrects=previous,
                        correction_reason="the chart was corrected", detail=detail)
                remaining -= cut
        result = session_stock(session, now=now)
        if close and not result.reconciliation.reconciled and result.open_discrepancy is None:
            rec = result.reconciliation
            d = Discrepancy.objects.create(
                site=session.site, source="session", session=session, opened_at=locked.now,
                opened_by=user, expected_mg=dec(rec.drawn_mg),
                found_mg=dec(rec.given_mg + rec.wasted_mg + rec.returned_mg),
                message=rec.message, detail={"reconciliation": rec.to_dict(),
                                             "rules": core.load_rules().version})
            _audit(actor, AuditAction.STOCK_DISCREPANCY_OPEN, d, {"session": session.pk})
            result = session_stock(session, now=now)
        _audit(actor, AuditAction.STOCK_RECONCILE, session, {"status": result.reconciliation.status,
                                                   "close": close})
    return result


def session_close_hold(session: Any) -> RecordHold | None:
    """The bedside's discharge gate asks this (registered in :mod:`.apps`): ``None`` when
    the session's ketamine is accounted for, or its difference is on record as a
    discrepancy; else the hold that says what is missing.

    A site without a DEA registration here does not keep its controlled-substance record
    in this system, and holds nothing. An open discrepancy does not keep the patient in
    the chair: the difference is then the stock room's to explain, and the ledger's session
    stays unreconciled (``SessionStock.can_close``) until it is resolved.
    """
    if registration_of(session.site) is None:
        return None
    result = session_stock(session)
    if result.reconciliation.reconciled or result.open_discrepancy is not None:
        return None
    return RecordHold("controlled_substance", (
        f"Ketamine record: {result.reconciliation.message} If it cannot be accounted for, "
        "choose Reconcile for closing on the session's ketamine page: that opens a "
        "discrepancy for the stock room, and the patient may then go."))


def session_record_link(session: Any) -> RecordLink | None:
    """The session page's link to this session's ketamine (draw, waste, reconcile)."""
    if registration_of(session.site) is None:
        return None
    return RecordLink("Ketamine record: draw, waste and reconcile",
                      reverse("stock_session", args=[session.pk]))


def session_closed(actor: Actor, session: Any) -> None:
    """After a stop, a transfer, an abandon or a discharge (the bedside's on-close hook):
    book the charted dose as ADMINISTER, without opening a discrepancy (the waste usually
    follows the stop). Nothing to do where the site keeps no record here or nothing was
    drawn, or when the nurse may not handle stock (the stock page reconciles later)."""
    if registration_of(session.site) is None or actor.user is None \
            or not stock_can(actor.user, StockCapability.DRAW) \
            or not LedgerEntry.objects.filter(session=session, kind="draw").exists():
        return
    stock_session_reconcile(actor=actor, session=session)


# --------------------------------------------------------------------------- stock room


def stock_transfer(*, actor: Actor, container: Container, to_site: Site,
                   invoice_number: str, occurred_at: datetime | None = None,
                   idempotency_key: str | None = None) -> LedgerEntry:
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
    return out


FORM_41_METHODS = ("on_site", "reverse_distributor")


def stock_destroy(*, actor: Actor, container: Container, method: str,
                  witnesses: Sequence[User | None] = (), manner: str = "", place: str = "",
                  reverse_distributor: Mapping[str, str] | None = None,
                  occurred_at: datetime | None = None,
                  idempotency_key: str | None = None) -> LedgerEntry:
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
    return entry


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


# --------------------------------------------------------------------------- counts


def stock_count(*, actor: Actor, site: Site, moment: str,
                counted_ml: Mapping[int, Any], occurred_at: datetime | None = None,
                inventory_kind: str = "", idempotency_key: str | None = None) -> Count:
    """A blind count: the counter says what is in each vial (mL; a sealed vial is its
    full volume, an opened one may be estimated); differences open discrepancies."""
    user = _require(actor.user, StockCapability.COUNT)
    _require_site(user, site)
    if idempotency_key and (done := Count.objects.filter(
            idempotency_key=idempotency_key).first()) is not None:
        done.replayed = True
        return done
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
    return count


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


# --------------------------------------------------------------------------- verify


def _checkpoints(site_code: str) -> Path:
    return Path(settings.STOCK_CHECKPOINTS) / f"{site_code}.log"


def stock_checkpoint() -> int:
    """Append each site's ledger head to its checkpoint file outside the database, when it
    moved since the last checkpoint (the worker runs this with the audit sealer; restore
    writes a ``restore`` line). Returns the number of checkpoints written."""
    written = 0
    for head in ChainHead.objects.select_related("site").filter(seq__gt=0):
        path = _checkpoints(head.site.code)
        newest = anchor.last(anchor.read(path, _chain_key()))
        if newest is None or (newest.seq, newest.hash) != (head.seq, head.hash):
            anchor.append(path, _chain_key(), seq=head.seq, hash_=head.hash)
            written += 1
    return written


def stock_restored() -> None:
    """After a restore: each site's ledger was deliberately put back to its stored head."""
    for head in ChainHead.objects.select_related("site"):
        anchor.append(_checkpoints(head.site.code), _chain_key(), seq=head.seq,
                      hash_=head.hash, kind="restore")


def stock_verify() -> dict[str, list[core.ChainBreak]]:
    """Recompute every site's chain and compare it with the checkpoints kept outside the
    database: ``{site code: [breaks]}`` (empty lists when intact). A site whose ledger
    rows and head were removed together is still found by its checkpoint file."""
    heads = {h.site.code: h for h in ChainHead.objects.select_related("site")}
    folder = Path(settings.STOCK_CHECKPOINTS)
    on_file = sorted(p.stem for p in folder.glob("*.log")) if folder.is_dir() else []
    return {code: _verify_site(code, heads.get(code)) for code in sorted({*heads, *on_file})}


def _verify_site(code: str, head: ChainHead | None) -> list[core.ChainBreak]:
    read = anchor.read(_checkpoints(code), _chain_key())
    wanted = {cp.seq for cp in read.checkpoints}
    seen: dict[int, str] = {}
    last_seq = 0

    def chain() -> Iterator[core.ChainEntry]:
        nonlocal last_seq
        rows = LedgerEntry.objects.filter(site__code=code).order_by("seq", "id")
        for e in rows.iterator(chunk_size=2000):
            last_seq = max(last_seq, e.seq)
            if e.seq in wanted:
                seen[e.seq] = e.hash
            yield core.ChainEntry(e.seq, e.chain_content(), e.prev_hash, e.hash)

    breaks = core.verify_ledger(chain(), tip=(head.seq, head.hash) if head else None,
                                key=_chain_key())
    return breaks + [core.ChainBreak(seq, text)
                     for seq, text in anchor.problems(read, seen, last_seq)]
