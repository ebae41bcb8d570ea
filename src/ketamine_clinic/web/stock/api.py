"""The stock record's API: one write per entry type, each with an idempotency key (a retry
returns what was recorded, 200 with ``replayed``; a new record is 201), and reads of
balances, the ledger and a session's reconciliation."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest
from ninja import Router
from ninja.errors import HttpError
from ninja.responses import Status

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.accounts.roles import Capability
from ketamine_clinic.web.api import found, require
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.patients.schemas import ErrorOut
from ketamine_clinic.web.sessions import selectors as sessions
from ketamine_clinic.web.stock import selectors, services
from ketamine_clinic.web.stock.models import Container, LedgerEntry, Product
from ketamine_clinic.web.stock.schemas import (
    BalanceOut,
    CorrectionIn,
    CountIn,
    CountOut,
    DestroyIn,
    DrawIn,
    EntryOut,
    LossIn,
    LossOut,
    ReceiptOut,
    ReceiveIn,
    ReconcileOut,
    ReturnIn,
    TransferIn,
    WasteIn,
)

router = Router(tags=["stock"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
WRITTEN = {200: EntryOut, 201: EntryOut, **ERRORS}


def _user(request: HttpRequest) -> User:
    return require(request, Capability.VIEW_STOCK)


def _site(user: User, code: str) -> Site:
    site = user.sites.filter(code=code).first()
    if site is None:
        raise HttpError(404, f"no site {code!r} among yours")
    return site


def _vial(user: User, label: str) -> Container:
    vial = (Container.objects.select_related("lot__product", "site")
            .filter(label=label, site__in=user.sites.all()).first())
    if vial is None:
        raise UsageError("container", f"no vial {label!r} at your sites")
    return vial


def _session(request: HttpRequest, session_id: int) -> Any:
    """The session for a stock write, whose service records the entry."""
    user = _user(request)
    return found(lambda: sessions.session_get_unaudited(user, session_id,
                                                        Actor.from_request(request)), "session")


def _witness(request: HttpRequest, username: str, password: str) -> User:
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise UsageError("witness", f"the witness {username} could not be signed in")
    return user


def _mg(v: Any) -> str | None:
    return None if v is None else f"{v.normalize():f}"


def entry_out(e: LedgerEntry, *, replayed: bool = False) -> dict[str, Any]:
    return {
        "id": e.pk, "site": e.site.code, "seq": e.seq, "kind": e.kind,
        "occurred_at": e.occurred_at, "recorded_at": e.recorded_at, "late": e.late,
        "container": e.container.label if e.container else None, "session": e.session_id,
        "patient": e.patient_id, "quantity_mg": _mg(e.quantity_mg),
        "container_balance_mg": _mg(e.container_balance_mg),
        "site_balance_mg": _mg(e.site_balance_mg),
        "custody_balance_mg": _mg(e.custody_balance_mg),
        "recorded_by": e.recorded_by.get_username(),
        "witness": e.witness.get_username() if e.witness else None,
        "second_witness": e.second_witness.get_username() if e.second_witness else None,
        "corrects": e.corrects_id, "detail": e.detail,
        "replayed": replayed,
    }


def _written(done: services.Recorded[LedgerEntry]) -> Any:
    return Status(200 if done.replayed else 201, entry_out(done.record, replayed=done.replayed))


def _actor(request: HttpRequest, site: Site) -> Actor:
    return Actor.from_request(request, site_code=site.code)


@router.post("/stock/receive", response={200: ReceiptOut, 201: ReceiptOut, **ERRORS})
def post_receive(request: HttpRequest, payload: ReceiveIn) -> Any:
    user = _user(request)
    site = _site(user, payload.site)
    product = Product.objects.filter(ndc=payload.product_ndc).first()
    if product is None:
        raise UsageError("product_ndc", f"no product with NDC {payload.product_ndc}")
    done = services.stock_receive(
        actor=_actor(request, site), site=site, product=product,
        lot_number=payload.lot_number, expires_on=payload.expires_on,
        containers=payload.containers, supplier_name=payload.supplier_name,
        supplier_address=payload.supplier_address,
        supplier_dea_number=payload.supplier_dea_number,
        invoice_number=payload.invoice_number, received_on=payload.received_on,
        note=payload.note, idempotency_key=payload.idempotency_key)
    receipt = done.record
    return Status(200 if done.replayed else 201, {
        "id": receipt.pk, "replayed": done.replayed,
        "containers": list(receipt.containers.order_by("label")
                           .values_list("label", flat=True))})


@router.post("/stock/draw", response=WRITTEN)
def post_draw(request: HttpRequest, payload: DrawIn) -> Any:
    session = _session(request, payload.session)
    vial = _vial(_user(request), payload.container)
    return _written(services.stock_draw(
        actor=_actor(request, session.site), session=session, container=vial,
        volume_ml=payload.volume_ml, occurred_at=payload.occurred_at,
        idempotency_key=payload.idempotency_key))


@router.post("/stock/waste", response=WRITTEN)
def post_waste(request: HttpRequest, payload: WasteIn) -> Any:
    session = _session(request, payload.session)
    witness = _witness(request, payload.witness_username, payload.witness_password)
    return _written(services.stock_waste(
        actor=_actor(request, session.site), session=session, witness=witness,
        quantity_mg=payload.quantity_mg, volume_ml=payload.volume_ml,
        occurred_at=payload.occurred_at, note=payload.note,
        idempotency_key=payload.idempotency_key))


@router.post("/stock/return", response=WRITTEN)
def post_return(request: HttpRequest, payload: ReturnIn) -> Any:
    session = _session(request, payload.session)
    vial = _vial(_user(request), payload.container)
    return _written(services.stock_return(
        actor=_actor(request, session.site), session=session, container=vial,
        quantity_mg=payload.quantity_mg, idempotency_key=payload.idempotency_key))


@router.post("/stock/transfer", response=WRITTEN)
def post_transfer(request: HttpRequest, payload: TransferIn) -> Any:
    user = _user(request)
    vial = _vial(user, payload.container)
    to = Site.objects.filter(code=payload.to_site).first()
    if to is None:
        raise UsageError("to_site", f"no site {payload.to_site!r}")
    return _written(services.stock_transfer(
        actor=_actor(request, vial.site), container=vial, to_site=to,
        invoice_number=payload.invoice_number, occurred_at=payload.occurred_at,
        idempotency_key=payload.idempotency_key))


@router.post("/stock/destroy", response=WRITTEN)
def post_destroy(request: HttpRequest, payload: DestroyIn) -> Any:
    vial = _vial(_user(request), payload.container)
    witnesses = [_witness(request, w.username, w.password) for w in payload.witnesses]
    return _written(services.stock_destroy(
        actor=_actor(request, vial.site), container=vial, method=payload.method,
        witnesses=witnesses, manner=payload.manner, place=payload.place,
        reverse_distributor=payload.reverse_distributor, occurred_at=payload.occurred_at,
        idempotency_key=payload.idempotency_key))


@router.post("/stock/loss", response={201: LossOut, **ERRORS})
def post_loss(request: HttpRequest, payload: LossIn) -> Any:
    user = _user(request)
    site = _site(user, payload.site)
    case = services.stock_loss_report(
        actor=_actor(request, site), site=site, loss_type=payload.loss_type,
        discovered_at=payload.discovered_at,
        items=[(_vial(user, i.container), i.quantity_mg) for i in payload.items],
        description=payload.description, police_notified=payload.police_notified,
        police_department=payload.police_department, police_phone=payload.police_phone,
        purchase_value_usd=payload.purchase_value_usd, measures_taken=payload.measures_taken)
    return Status(201, {"id": case.pk, "state": case.state, "quantity_mg": _mg(case.quantity_mg),
                        "notice_due_on": case.notice_due_on,
                        "form_106_due_on": case.form_106_due_on})


@router.post("/stock/count", response={200: CountOut, 201: CountOut, **ERRORS})
def post_count(request: HttpRequest, payload: CountIn) -> Any:
    user = _user(request)
    site = _site(user, payload.site)
    vials = {v.label: v.pk for v in Container.objects.filter(site=site, balance_mg__gt=0)}
    unknown = sorted(set(payload.counted_ml) - set(vials))
    if unknown:
        raise UsageError("counted_ml", f"vial {unknown[0]} is not in this site's stock")
    done = services.stock_count(
        actor=_actor(request, site), site=site, moment=payload.moment,
        counted_ml={vials[label]: ml for label, ml in payload.counted_ml.items()},
        inventory_kind=payload.inventory_kind, occurred_at=payload.occurred_at,
        idempotency_key=payload.idempotency_key)
    count = done.record
    return Status(200 if done.replayed else 201, {
        "id": count.pk, "moment": count.moment, "mismatches": count.mismatches,
        "replayed": done.replayed,
        "discrepancies": list(count.discrepancies.values_list("pk", flat=True))})


def _reconcile_out(session: Any, result: services.SessionStock) -> dict[str, Any]:
    rec = result.reconciliation

    def mg(v: Any) -> str:
        return f"{core.ledger_mg(v).normalize():f}"

    return {"session": session.pk, "status": rec.status.value, "drawn_mg": mg(rec.drawn_mg),
            "given_mg": mg(rec.given_mg), "wasted_mg": mg(rec.wasted_mg),
            "returned_mg": mg(rec.returned_mg), "difference_mg": mg(rec.difference_mg),
            "message": rec.message, "can_close": result.can_close,
            "discrepancy": result.open_discrepancy.pk if result.open_discrepancy else None}


@router.get("/stock/sessions/{session_id}", response={200: ReconcileOut, **ERRORS})
def get_session_stock(request: HttpRequest, session_id: int) -> Any:
    user = _user(request)
    session = found(lambda: sessions.session_get_for(
        user, session_id, Actor.from_request(request), read=AuditAction.API_STOCK_SESSION_VIEW),
        "session")
    return _reconcile_out(session, services.session_stock(session))


@router.post("/stock/sessions/{session_id}/reconcile", response={200: ReconcileOut, **ERRORS})
def post_reconcile(request: HttpRequest, session_id: int, close: bool = True) -> Any:
    session = _session(request, session_id)
    result = services.stock_session_reconcile(actor=_actor(request, session.site),
                                              session=session, close=close)
    return _reconcile_out(session, result)


@router.get("/stock/balances", response={200: list[BalanceOut], **ERRORS})
def get_balances(request: HttpRequest, site: str) -> Any:
    s = _site(_user(request), site)
    return [{"container": v.label, "product_ndc": v.lot.product.ndc, "lot": v.lot.lot_number,
             "expires_on": v.lot.expires_on, "balance_mg": _mg(v.balance_mg)}
            for v in selectors.vials_in_stock(s)]


@router.get("/stock/ledger", response={200: list[EntryOut], **ERRORS})
def get_ledger(request: HttpRequest, site: str, limit: int = 100) -> Any:
    s = _site(_user(request), site)
    limit = max(1, min(limit, 1000))
    return [entry_out(e) for e in selectors.ledger(s)[:limit]]


@router.post("/stock/entries/{entry_id}/corrections", response={201: EntryOut, **ERRORS})
def post_correction(request: HttpRequest, entry_id: int, payload: CorrectionIn) -> Any:
    user = _user(request)
    entry = (LedgerEntry.objects.select_related("site", "session")
             .filter(pk=entry_id, site__in=user.sites.all()).first())
    if entry is None:
        raise HttpError(404, "no such entry")
    witness = (_witness(request, payload.witness_username, payload.witness_password or "")
               if payload.witness_username else None)
    fixed = services.stock_entry_correct(actor=_actor(request, entry.site), entry=entry,
                                         quantity_mg=payload.quantity_mg,
                                         reason=payload.reason, witness=witness)
    return Status(201, entry_out(fixed))
