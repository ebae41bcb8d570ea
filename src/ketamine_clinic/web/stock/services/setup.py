"""Setting up the record: a site's registration, products, the role grants, and receiving
stock into the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction

from ketamine_clinic.clinical import stock as core
from ketamine_clinic.clinical.stock import EntryKind
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.audit.actions import AuditAction
from ketamine_clinic.web.audit.services import Actor, audit_record
from ketamine_clinic.web.stock.models import (
    Container,
    Lot,
    Product,
    Receipt,
    Registration,
    StockGrant,
)
from ketamine_clinic.web.stock.permissions import StockCapability
from ketamine_clinic.web.stock.services.writer import (
    Recorded,
    _append,
    _audit,
    _lock,
    _replayed,
    _require,
    _require_site,
    dec,
    fr,
    local_date,
    registration_of,
)

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
                  idempotency_key: str | None = None) -> Recorded[Receipt]:
    """A shipment: one RECEIVE entry per numbered vial, on the date actually received."""
    user = _require(actor.user, StockCapability.RECEIVE)
    _require_site(user, site)
    if (done := _replayed(idempotency_key)) is not None:
        assert done.record.receipt is not None
        return Recorded(done.record.receipt, replayed=True)
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
    return Recorded(receipt)


def _next_label(prefix: str, n: int) -> str:
    label = f"{prefix}-{n:04d}"
    while Container.objects.filter(label=label).exists():
        n += 1
        label = f"{prefix}-{n:04d}"
    return label
