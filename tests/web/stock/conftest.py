"""A registered Denver stock room with one shipment, and the session of tests/web/sessions.

Cast additions: Nina, a second nurse at Denver (the witness); Bob draws and wastes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.web.sessions.conftest import (  # noqa: F401  (fixtures re-used)
    Clinic,
    Walk,
    clinic,
    key,
    make_consent,
    make_order,
    walk,
)

__all__ = ["Clinic", "Stock", "Walk", "key", "make_consent", "make_order"]

SUPPLIER = {"supplier_name": "Front Range Medical Supply", "supplier_address":
            "100 Colfax Ave, Denver CO 80202", "supplier_dea_number": "RF1234563"}


@dataclass
class Stock:
    cast: Any
    nina: Any
    product: Any
    receipt: Any
    vials: list[Any]

    def actor(self, user: Any) -> Any:
        from ketamine_clinic.web.audit.services import Actor

        return Actor(user=user, client_address="127.0.0.1")


def register(cast: Any, site: Any, dea: str) -> Any:
    from ketamine_clinic.web.stock import services

    return services.registration_save(
        actor=_actor(cast.dave), site=site, dea_number=dea,
        registrant_name=f"Front Range Pain Clinic, {site.name}",
        address=f"1 Main St, {site.name} CO", expires_on=date.today() + timedelta(days=700))


def _actor(user: Any) -> Any:
    from ketamine_clinic.web.audit.services import Actor

    return Actor(user=user, client_address="127.0.0.1")


def open_day(stock: Stock, site: Any = None) -> Any:
    """The opening count, every vial counted as recorded."""
    from ketamine_clinic.web.stock import services
    from ketamine_clinic.web.stock.models import Container

    site = site or stock.cast.denver
    vials = Container.objects.filter(site=site, balance_mg__gt=0)
    counted = {v.pk: v.balance_mg / v.lot.product.strength_mg_per_ml for v in vials}
    return services.stock_count(actor=stock.actor(stock.cast.bob), site=site,
                                moment="opening", counted_ml=counted)


@pytest.fixture
def stock(cast: Any) -> Stock:
    from ketamine_clinic.web.accounts.models import User
    from ketamine_clinic.web.stock import services

    services.ensure_default_grants()
    nina = User.objects.create_user(username="nina", password=None, role="nurse",
                                    first_name="Nina", last_name="Park", title="RN")
    nina.sites.set([cast.denver])
    cast.dave.sites.add(cast.boulder)
    register(cast, cast.denver, "AF1234563")
    product = services.product_create(
        actor=_actor(cast.dave), ndc="0143-9508-10", name="Ketamine hydrochloride",
        strength_mg_per_ml="50", container_volume_ml="10", rxnorm="")
    receipt = services.stock_receive(
        actor=_actor(cast.bob), site=cast.denver, product=product, lot_number="KX2031",
        expires_on=timezone.localdate() + timedelta(days=300), containers=4,
        invoice_number="INV-7781", received_on=timezone.localdate(), **SUPPLIER).record
    return Stock(cast, nina, product, receipt, list(receipt.containers.order_by("label")))
