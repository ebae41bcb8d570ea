"""A demo stock history (fictional registrations, supplier and lots), written through the
services so the ledger, its chain and the audit trail are real: the initial (zero)
inventory, a shipment, today's draws and a witnessed waste for the demo sessions, a
reconciled session, a transfer to Boulder, an on-site destruction and a spot count that
found a vial short (an open discrepancy, explained).

Everything is recorded now (the demo does not back-date the ledger: it is append-only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.sessions.models import InfusionSession
from ketamine_clinic.web.stock import services
from ketamine_clinic.web.stock.models import Container, LedgerEntry, Product

REGISTRATIONS = {"denver": "FR2104824", "boulder": "FR3105776"}
SUPPLIER = {"supplier_name": "Mile High Medical Distribution (fictional)",
            "supplier_address": "800 Example Pkwy, Aurora CO 80011",
            "supplier_dea_number": "RM4401927"}


def _counted(site: Site) -> dict[int, Any]:
    return {v.pk: v.balance_mg / v.lot.product.strength_mg_per_ml
            for v in Container.objects.filter(site=site, balance_mg__gt=0)
            .select_related("lot__product")}


@transaction.atomic
def demo_stock() -> int:
    """Write the demo history once; returns the number of ledger entries written."""
    if LedgerEntry.objects.exists():
        return 0
    staff = {u.username: u for u in User.objects.filter(username__in=[
        "admin.evans", "nurse.brooks", "dr.alvarez", "nurse.chen", "dr.grant"])}
    sites = {s.code: s for s in Site.objects.filter(code__in=REGISTRATIONS)}
    if len(staff) < 5 or len(sites) < 2:
        return 0
    services.ensure_default_grants()
    admin = Actor(user=staff["admin.evans"], client_address="demo")
    nurses = {"denver": Actor(user=staff["nurse.brooks"], client_address="demo"),
              "boulder": Actor(user=staff["nurse.chen"], client_address="demo")}
    witnesses = {"denver": staff["dr.alvarez"], "boulder": staff["dr.grant"]}
    today = timezone.localdate()
    for code, site in sites.items():
        services.registration_save(
            actor=admin, site=site, dea_number=REGISTRATIONS[code],
            registrant_name=site.name, address=site.address or site.name,
            expires_on=today + timedelta(days=500))
    vial_50 = Product.objects.filter(ndc="DEMO-0050-10").first() or services.product_create(
        actor=admin, ndc="DEMO-0050-10", name="Ketamine hydrochloride (demo)",
        strength_mg_per_ml="50", container_volume_ml="10")
    vial_100 = Product.objects.filter(ndc="DEMO-0100-05").first() or services.product_create(
        actor=admin, ndc="DEMO-0100-05", name="Ketamine hydrochloride (demo)",
        strength_mg_per_ml="100", container_volume_ml="5")
    for code, site in sites.items():  # the initial inventory: nothing on hand yet
        services.stock_count(actor=nurses[code], site=site, moment="opening", counted_ml={},
                             inventory_kind="initial")
    denver, boulder = sites["denver"], sites["boulder"]
    services.stock_receive(
        actor=nurses["denver"], site=denver, product=vial_50, lot_number="DK24117",
        expires_on=today + timedelta(days=420), containers=12, invoice_number="MH-30412",
        received_on=today, **SUPPLIER)
    services.stock_receive(
        actor=nurses["denver"], site=denver, product=vial_100, lot_number="DK23881",
        expires_on=today + timedelta(days=20), containers=2, invoice_number="MH-30413",
        received_on=today, **SUPPLIER)
    first_50 = list(Container.objects.filter(site=denver, lot__product=vial_50)
                    .order_by("label"))
    services.stock_transfer(actor=admin, container=first_50[-1], to_site=boulder,
                            invoice_number="TR-0001")
    services.stock_transfer(actor=admin, container=first_50[-2], to_site=boulder,
                            invoice_number="TR-0001")
    services.stock_count(actor=nurses["boulder"], site=boulder, moment="spot",
                         counted_ml=_counted(boulder))
    services.stock_destroy(
        actor=admin, container=Container.objects.filter(lot__product=vial_100)
        .order_by("label")[0], method="on_site",
        witnesses=[staff["dr.alvarez"], staff["nurse.brooks"]],
        manner="chemical digestion kit (demo)", place="Denver stock room")
    _demo_sessions(sites, nurses, witnesses)
    counted = _counted(denver)
    short = (Container.objects.filter(site=denver, balance_mg__gt=0, lot__product=vial_50)
             .order_by("-label").first())
    if short is not None:
        counted[short.pk] = "9.6"
        count = services.stock_count(actor=nurses["denver"], site=denver, moment="spot",
                                     counted_ml=counted).record
        for d in count.discrepancies.all():
            services.discrepancy_act(actor=nurses["denver"], discrepancy=d, event="explain",
                                     note="Stopper looked punctured; vial set aside for the "
                                          "medical director (demo).")
    return LedgerEntry.objects.count()


def _demo_sessions(sites: dict[str, Site], nurses: dict[str, Actor],
                   witnesses: dict[str, User]) -> None:
    for session in InfusionSession.objects.filter(
            site__in=sites.values(), state__in=("infusing", "paused", "stopped",
                                                "recovering")).select_related("site", "order"):
        code = session.site.code
        vial = (Container.objects.filter(site=session.site, balance_mg__gt=0,
                                         lot__product__strength_mg_per_ml=50)
                .order_by("label").first())
        if vial is None:
            continue
        try:
            services.stock_draw(actor=nurses[code], session=session, container=vial)
            if session.state == "recovering":
                status = services.session_stock(session)
                waste = status.reconciliation.expected_waste_mg
                services.stock_waste(actor=nurses[code], session=session,
                                     witness=witnesses[code],
                                     quantity_mg=f"{float(waste):.3f}",
                                     note="bag remainder (demo)")
                services.stock_session_reconcile(actor=nurses[code], session=session,
                                                 close=True)
        except UsageError:
            continue  # e.g. the day at that site is not open
