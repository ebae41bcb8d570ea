"""Stock pages: the stock room (receive, count, destroy, transfer, loss), the bedside
(draw and waste with a witness, reconcile) and the administrator's (inventories,
discrepancies, reports, settings)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.clinical import units
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.http import AuthedHttpRequest
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.accounts.roles import Capability, Role
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.lib.decorators import capability_required
from ketamine_clinic.web.lib.forms import refusal_message
from ketamine_clinic.web.patients.models import Patient
from ketamine_clinic.web.sessions import selectors as sessions
from ketamine_clinic.web.stock import chart, exports, selectors, services
from ketamine_clinic.web.stock.models import (
    Container,
    Discrepancy,
    Inventory,
    LedgerEntry,
    LossCase,
    Product,
    StockGrant,
)
from ketamine_clinic.web.stock.permissions import StockCapability, stock_can

VIEW = Capability.VIEW_STOCK


def _site(request: AuthedHttpRequest) -> Site:
    user: User = request.user
    sites = list(selectors.sites_for(user))
    if not sites:
        raise PermissionDenied("You work at no clinic site.")
    code = request.GET.get("site") or request.POST.get("site")
    for s in sites:
        if s.code == code:
            return s
    return sites[0]


def _actor(request: AuthedHttpRequest, site: Site) -> Actor:
    return Actor.from_request(request, site_code=site.code)


def _caps(user: Any) -> set[str]:
    return {c.value for c in StockCapability if stock_can(user, c)}


def _date(text: str | None, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(field, "enter a date as YYYY-MM-DD") from exc


def _witness(request: AuthedHttpRequest, prefix: str = "witness") -> User | None:
    """The witness signs in on the same screen: their username and password."""
    username = request.POST.get(f"{prefix}_username", "").strip()
    if not username:
        return None
    user = authenticate(request, username=username,
                        password=request.POST.get(f"{prefix}_password", ""))
    if user is None:
        raise UsageError(prefix, f"the witness {username} could not be signed in; check the "
                                 "username and password")
    return user


def _page(request: AuthedHttpRequest, template: str, site: Site, **context: Any) -> HttpResponse:
    user = request.user
    context.update(site=site, sites=selectors.sites_for(user),
                   stock_caps=_caps(user), day=selectors.day_state(site))
    return render(request, template, context)


def _back(request: AuthedHttpRequest, name: str, site: Site, **kwargs: Any) -> HttpResponse:
    return redirect(f"{reverse(name, kwargs=kwargs)}?site={site.code}")


# --------------------------------------------------------------------------- stock room


@capability_required(VIEW)
def stock_home(request: AuthedHttpRequest) -> HttpResponse:
    site = _site(request)
    audit_record(actor=_actor(request, site), action=AuditAction.STOCK_VIEW, object_type="site",
                 object_id=site.pk)
    vials = list(selectors.vials_in_stock(site))
    today = services.local_date(site, timezone.now())
    return _page(request, "stock/home.html", site, vials=vials,
                 sessions=selectors.sessions_today(site),
                 unclosed=selectors.days_left_open(site),
                 entries=[selectors.entry_row(e) for e in selectors.ledger(site)[:25]],
                 discrepancies=selectors.open_discrepancies(site),
                 loss_cases=selectors.open_loss_cases(site),
                 inventory=selectors.inventory_status(site),
                 registration=selectors.registration(site),
                 total_mg=sum((v.balance_mg for v in vials), Decimal(0)), today=today,
                 other_sites=Site.objects.exclude(pk=site.pk),
                 loss_types=core.load_rules().loss_types)


@capability_required(VIEW)
def stock_receive(request: AuthedHttpRequest) -> HttpResponse:
    site = _site(request)
    form = {k: request.POST.get(k, "") for k in request.POST} if request.method == "POST" else {}
    if request.method == "POST":
        try:
            product = Product.objects.filter(pk=form.get("product") or 0).first()
            if product is None:
                raise UsageError("product", "choose the product received")
            expires = _date(form.get("expires_on"), "expires_on")
            received = _date(form.get("received_on"), "received_on")
            if expires is None or received is None:
                raise UsageError("expires_on" if expires is None else "received_on",
                                 "is required")
            try:
                n = int(form.get("containers") or "0")
            except ValueError as exc:
                raise UsageError("containers", "enter the number of vials") from exc
            receipt = services.stock_receive(
                actor=_actor(request, site), site=site, product=product,
                lot_number=form.get("lot_number", ""), expires_on=expires, containers=n,
                supplier_name=form.get("supplier_name", ""),
                supplier_address=form.get("supplier_address", ""),
                supplier_dea_number=form.get("supplier_dea_number", ""),
                invoice_number=form.get("invoice_number", ""), received_on=received,
                note=form.get("note", ""), idempotency_key=form.get("idempotency_key")).record
            labels = [c.label for c in receipt.containers.order_by("label")]
            messages.success(request, f"Received {len(labels)} vials ({labels[0]} to "
                                      f"{labels[-1]}) on invoice {receipt.invoice_number}.")
            return _back(request, "stock_home", site)
        except UsageError as exc:
            messages.error(request, refusal_message("Nothing was recorded.", exc))

    return _page(request, "stock/receive.html", site, form=form,
                 products=Product.objects.filter(active=True), key=uuid.uuid4().hex,
                 today=services.local_date(site, timezone.now()))


@capability_required(VIEW)
def stock_count(request: AuthedHttpRequest) -> HttpResponse:
    """A blind count: the page shows each vial, never its balance."""
    site = _site(request)
    vials = list(selectors.vials_in_stock(site))
    if request.method == "POST":
        try:
            counted = {v.pk: request.POST.get(f"counted_{v.pk}", "").strip() for v in vials}
            count = services.stock_count(
                actor=_actor(request, site), site=site,
                moment=request.POST.get("moment", ""), counted_ml=counted,
                inventory_kind=request.POST.get("inventory_kind", ""),
                idempotency_key=request.POST.get("idempotency_key")).record
            if count.mismatches:
                messages.warning(request, f"{count.mismatches} vial(s) differ from the ledger: "
                                          "a discrepancy is open for each.")
            else:
                messages.success(request, f"The {count.moment} count matches the ledger.")
            inv = Inventory.objects.filter(count=count).first()
            if inv is not None:
                return _back(request, "stock_inventory", site, inventory_id=inv.pk)
            return _back(request, "stock_home", site)
        except UsageError as exc:
            vial = next((v for v in vials if exc.field == f"counted_{v.pk}"), None)
            if vial is not None:
                exc = UsageError(f"vial {vial.label}", exc.problem)
            messages.error(request, refusal_message("Nothing was recorded.", exc))
    moment = "opening" if selectors.day_state(site) == "not_opened" else "closing"
    return _page(request, "stock/count.html", site, vials=vials, moment=moment,
                 key=uuid.uuid4().hex, posted=request.POST)


@capability_required(VIEW)
def stock_container(request: AuthedHttpRequest, container_id: int) -> HttpResponse:
    """One vial: its history, and destroy, transfer or report it lost."""
    site = _site(request)
    vial = get_object_or_404(Container.objects.select_related("lot__product"),
                             pk=container_id, site__in=selectors.sites_for(request.user))
    site = vial.site
    if request.method == "POST":
        actor, action = _actor(request, site), request.POST.get("action")
        try:
            if action == "destroy":
                method = request.POST.get("method", "")
                witnesses = [_witness(request, "witness"), _witness(request, "witness2")]
                services.stock_destroy(
                    actor=actor, container=vial, method=method, witnesses=witnesses,
                    manner=request.POST.get("manner", ""), place=request.POST.get("place", ""),
                    reverse_distributor={k: request.POST.get(f"rd_{k}", "") for k in
                                         ("name", "address", "dea_number", "invoice_number")})
                messages.success(request, f"Vial {vial.label} destroyed and recorded.")
            elif action == "transfer":
                to = Site.objects.filter(pk=request.POST.get("to_site") or 0).first()
                if to is None:
                    raise UsageError("to_site", "choose the receiving site")
                services.stock_transfer(actor=actor, container=vial, to_site=to,
                                        invoice_number=request.POST.get("invoice_number", ""))
                messages.success(request, f"Vial {vial.label} transferred to {to.name}.")
            elif action == "loss":
                found = timezone.now()
                case = services.stock_loss_report(
                    actor=actor, site=site, loss_type=request.POST.get("loss_type", ""),
                    discovered_at=found, items=[(vial, request.POST.get("quantity_mg", ""))],
                    description=request.POST.get("description", ""),
                    police_notified=bool(request.POST.get("police_notified")),
                    police_department=request.POST.get("police_department", ""),
                    police_phone=request.POST.get("police_phone", ""))
                return _back(request, "stock_loss_case", site, case_id=case.pk)
            else:
                raise UsageError("action", "choose destroy, transfer or loss")
            return _back(request, "stock_home", site)
        except UsageError as exc:
            messages.error(request, refusal_message("Nothing was recorded.", exc))
    entries = [selectors.entry_row(e) for e in vial.entries.select_related(
        "product", "container__lot", "recorded_by", "witness", "second_witness", "patient",
        "other_site").order_by("-seq")]
    return _page(request, "stock/container.html", site, vial=vial, entries=entries,
                 other_sites=Site.objects.exclude(pk=site.pk),
                 loss_types=core.load_rules().loss_types)


# --------------------------------------------------------------------------- bedside


@capability_required(VIEW)
def stock_session(request: AuthedHttpRequest, session_id: int) -> HttpResponse:
    """The session's ketamine at the bedside: draw, waste with a witness, reconcile."""
    session = (sessions.session_get_unaudited(request.user, session_id,
                                              Actor.from_request(request))
               if request.method == "POST" else
               sessions.session_get_for(request.user, session_id, Actor.from_request(request),
                                        read=AuditAction.STOCK_SESSION_VIEW))
    site = session.site
    if request.method == "POST":
        actor, action = _actor(request, site), request.POST.get("action")
        key = request.POST.get("idempotency_key") or None
        try:
            if action == "draw":
                vial = Container.objects.filter(pk=request.POST.get("container") or 0,
                                                site=site).first()
                if vial is None:
                    raise UsageError("container", "choose the vial")
                e = services.stock_draw(actor=actor, session=session, container=vial,
                                        volume_ml=request.POST.get("volume_ml"),
                                        idempotency_key=key).record
                messages.success(request, f"Drew {core.show_mg(e.quantity_mg)} from vial "
                                          f"{vial.label}.")
            elif action == "waste":
                e = services.stock_waste(actor=actor, session=session,
                                         witness=_witness(request),
                                         quantity_mg=request.POST.get("quantity_mg"),
                                         note=request.POST.get("note", ""),
                                         idempotency_key=key).record
                messages.success(request, f"Wasted {core.show_mg(e.quantity_mg)}, witnessed by "
                                          f"{e.witness.display_name if e.witness else ''}.")
            elif action == "return":
                vial = Container.objects.filter(pk=request.POST.get("container") or 0).first()
                if vial is None:
                    raise UsageError("container", "choose the vial")
                services.stock_return(actor=actor, session=session, container=vial,
                                      idempotency_key=key)
                messages.success(request, f"Vial {vial.label} returned to stock.")
            elif action == "correct":
                entry = LedgerEntry.objects.filter(pk=request.POST.get("entry") or 0,
                                                   session=session).first()
                if entry is None:
                    raise UsageError("entry", "choose the entry to correct")
                services.stock_entry_correct(
                    actor=actor, entry=entry, quantity_mg=request.POST.get("quantity_mg", ""),
                    reason=request.POST.get("reason", ""),
                    witness=_witness(request, "correct_witness"))
                messages.success(request, f"Entry {entry.seq} corrected; the original stays "
                                          "in the record.")
            elif action == "reconcile":
                result = services.stock_session_reconcile(actor=actor, session=session,
                                                          close=True)
                if result.can_close:
                    messages.success(request, result.reconciliation.message)
                else:
                    messages.warning(request, result.reconciliation.message + " A discrepancy "
                                              "is open; the session cannot close until it is "
                                              "resolved.")
            else:
                raise UsageError("action", "choose draw, waste, return or reconcile")
            return redirect("stock_session", session_id=session.pk)
        except UsageError as exc:
            messages.error(request, refusal_message("Nothing was recorded.", exc))
    status = services.session_stock(session)
    rec = status.reconciliation
    conc = chart.bag_concentration_mg_per_ml(session)
    entries = [selectors.entry_row(e) for e in LedgerEntry.objects.filter(session=session)
               .select_related("product", "container__lot", "recorded_by", "witness",
                               "second_witness", "patient", "other_site").order_by("seq")]
    correctable = (LedgerEntry.objects.filter(
        session=session, kind__in=[k.value for k in services.CORRECTABLE],
        corrections__isnull=True).order_by("seq"))
    drawn_vials = (Container.objects.filter(entries__session=session,
                                            entries__kind="draw").distinct())
    witnesses = [u for u in User.objects.filter(sites=site, is_active=True)
                 .exclude(pk=request.user.pk).order_by("last_name")
                 if stock_can(u, StockCapability.WITNESS)]
    return _page(request, "stock/session.html", site, session=session, status=status,
                 rec=rec, vials=selectors.vials_in_stock(site), entries=entries,
                 waste_mg=core.ledger_mg(rec.expected_waste_mg),
                 waste_ml=core.ledger_mg(units.volume_ml(rec.expected_waste_mg, conc)),
                 drawn_vials=drawn_vials, witnesses=witnesses, key=uuid.uuid4().hex,
                 correctable=correctable,
                 conc=core.ledger_mg(conc))


# --------------------------------------------------------------------------- administrator


@capability_required(VIEW)
def stock_discrepancy(request: AuthedHttpRequest, discrepancy_id: int) -> HttpResponse:
    d = get_object_or_404(Discrepancy, pk=discrepancy_id,
                          site__in=selectors.sites_for(request.user))
    site = d.site
    if request.method == "POST":
        try:
            services.discrepancy_act(actor=_actor(request, site), discrepancy=d,
                                     event=request.POST.get("event", ""),
                                     note=request.POST.get("note", ""),
                                     adjust=bool(request.POST.get("adjust")),
                                     loss_type=request.POST.get("loss_type", ""))
            messages.success(request, "Recorded.")
            return redirect("stock_discrepancy", discrepancy_id=d.pk)
        except UsageError as exc:
            messages.error(request, refusal_message("Nothing was recorded.", exc))
    return _page(request, "stock/discrepancy.html", site, d=d,
                 notes=d.notes.select_related("by"), loss_types=core.load_rules().loss_types)


@capability_required(VIEW)
def stock_loss_case(request: AuthedHttpRequest, case_id: int) -> HttpResponse:
    case = get_object_or_404(LossCase, pk=case_id,
                             site__in=selectors.sites_for(request.user))
    site = case.site
    if request.method == "POST":
        try:
            services.loss_case_record(actor=_actor(request, site), case=case,
                                      kind=request.POST.get("kind", ""),
                                      reference=request.POST.get("reference", ""),
                                      note=request.POST.get("note", ""))
            messages.success(request, "Recorded.")
            return redirect("stock_loss_case", case_id=case.pk)
        except UsageError as exc:
            messages.error(request, refusal_message("Nothing was recorded.", exc))
    return _page(request, "stock/loss_case.html", site, case=case,
                 events=case.events.select_related("by"),
                 entries=[selectors.entry_row(e) for e in case.entries.select_related(
                     "product", "container__lot", "recorded_by", "witness", "second_witness",
                     "patient", "other_site")])


@capability_required(VIEW)
def stock_inventory(request: AuthedHttpRequest, inventory_id: int) -> HttpResponse:
    inv = get_object_or_404(Inventory.objects.select_related("taken_by", "site"),
                            pk=inventory_id, site__in=selectors.sites_for(request.user))
    site, fmt = inv.site, request.GET.get("format", "")
    audit_record(actor=_actor(request, site), action=AuditAction.STOCK_INVENTORY_VIEW,
                 object_type="inventory", object_id=inv.pk, detail={"format": fmt})
    name = f"inventory-{site.code}-{inv.kind}-{inv.taken_on}"
    if fmt == "csv":
        return exports.download(exports.inventory_csv(inv), f"{name}.csv", "text/csv")
    context = {"inv": inv, "lines": inv.lines}
    if fmt == "pdf":
        return exports.download(exports.pdf_bytes("stock/inventory_print.html",
                                                  {**context, "site": site}),
                                f"{name}.pdf", "application/pdf")
    return _page(request, "stock/inventory.html", site, **context)


@capability_required(VIEW)
def stock_reports(request: AuthedHttpRequest) -> HttpResponse:
    """The ledger and the dispensing log, per patient and per period; CSV or PDF."""
    site = _site(request)
    try:
        start = _date(request.GET.get("from"), "from")
        end = _date(request.GET.get("to"), "to")
    except UsageError as exc:
        messages.error(request, refusal_message("The report is not limited to a period.", exc))
        start = end = None
    report = request.GET.get("report", "dispensing")
    patient_id = request.GET.get("patient") or None
    qs = (selectors.dispensing_log(site, patient_id=int(patient_id) if patient_id and
                                   patient_id.isdigit() else None, start=start, end=end)
          if report == "dispensing" else selectors.ledger(site, start=start, end=end))
    rows = [selectors.entry_row(e) for e in qs[:5000]]
    fmt = request.GET.get("format", "")
    audit_record(actor=_actor(request, site), action=AuditAction.STOCK_REPORT, object_type="site",
                 object_id=site.pk, detail={"report": report, "format": fmt,
                                            "rows": len(rows)})
    name = f"{report}-{site.code}-{start or 'all'}-{end or 'all'}"
    if fmt == "csv":
        return exports.download(exports.csv_text(exports.LEDGER_COLUMNS, rows), f"{name}.csv",
                                "text/csv")
    context = {"rows": rows, "report": report, "start": start, "end": end,
               "registration": selectors.registration(site)}
    if fmt == "pdf":
        return exports.download(exports.pdf_bytes("stock/report_print.html",
                                                  {**context, "site": site}),
                                f"{name}.pdf", "application/pdf")

    return _page(request, "stock/reports.html", site, **context,
                 patients=Patient.objects.filter(site=site).order_by("family_name"),
                 patient_id=patient_id or "", inventories=Inventory.objects.filter(site=site),
                 retention=selectors.retention_years(site),
                 verify=services.stock_verify() if request.GET.get("verify") else None)


@capability_required(VIEW)
def stock_settings(request: AuthedHttpRequest) -> HttpResponse:
    """Registrations, products and who may do what (clinic administrators)."""
    site = _site(request)
    if not stock_can(request.user, StockCapability.MANAGE):
        raise PermissionDenied("Only a clinic administrator manages the stock settings.")
    actor = _actor(request, site)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "registration":
                expires = _date(request.POST.get("expires_on"), "expires_on")
                if expires is None:
                    raise UsageError("expires_on", "is required")
                years = request.POST.get("retention_years") or None
                services.registration_save(
                    actor=actor, site=site, dea_number=request.POST.get("dea_number", ""),
                    registrant_name=request.POST.get("registrant_name", ""),
                    address=request.POST.get("address", ""), expires_on=expires,
                    retention_years=int(years) if years else None,
                    state_rule_note=request.POST.get("state_rule_note", ""))
            elif action == "product":
                services.product_create(
                    actor=actor, ndc=request.POST.get("ndc", ""),
                    name=request.POST.get("name", ""),
                    strength_mg_per_ml=request.POST.get("strength_mg_per_ml", ""),
                    container_volume_ml=request.POST.get("container_volume_ml", ""),
                    rxnorm=request.POST.get("rxnorm", ""))
            elif action == "grants":
                services.grants_set(actor=actor, grants={
                    c.value: [r.value for r in Role if request.POST.get(f"{c.value}:{r.value}")]
                    for c in StockCapability})
            else:
                raise UsageError("action", "unknown form")
            messages.success(request, "Saved.")
            return _back(request, "stock_settings", site)
        except UsageError as exc:
            messages.error(request, refusal_message("Nothing was saved.", exc))
    grants = set(StockGrant.objects.values_list("capability", "role"))
    grid = [(c, [(r, (c.value, r.value) in grants) for r in Role]) for c in StockCapability]
    return _page(request, "stock/settings.html", site, grid=grid, roles=list(Role),
                 registration=selectors.registration(site), products=Product.objects.all())
