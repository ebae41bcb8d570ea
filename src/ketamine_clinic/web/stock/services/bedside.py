"""The session's ketamine: draw, waste (witnessed), return, the session's totals and custody,
and the reconciliation that closes the session's record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.urls import reverse

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.clinical import units
from ketamine_clinic.clinical.bedside.model import RecordHold
from ketamine_clinic.clinical.stock import EntryKind
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.sessions.hooks import RecordLink
from ketamine_clinic.web.stock import chart
from ketamine_clinic.web.stock.models import (
    ClinicDay,
    Container,
    Discrepancy,
    LedgerEntry,
    Product,
)
from ketamine_clinic.web.stock.permissions import StockCapability, stock_can
from ketamine_clinic.web.stock.services.writer import (
    Recorded,
    _append,
    _audit,
    _lock,
    _replayed,
    _require,
    _require_site,
    _when,
    custody_mg,
    dec,
    fr,
    local_date,
    registration_of,
)

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
               idempotency_key: str | None = None) -> Recorded[LedgerEntry]:
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
    return Recorded(entry)


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
                idempotency_key: str | None = None) -> Recorded[LedgerEntry]:
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
    return Recorded(entry)


def _session_product(session: Any) -> Product:
    draw = (LedgerEntry.objects.filter(session=session, kind=EntryKind.DRAW.value)
            .select_related("product").first())
    if draw is None:
        raise UsageError("session", "nothing has been drawn for this session")
    return draw.product


def stock_return(*, actor: Actor, session: Any, container: Container,
                 quantity_mg: Any = None, occurred_at: datetime | None = None,
                 idempotency_key: str | None = None) -> Recorded[LedgerEntry]:
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
    return Recorded(entry)


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
