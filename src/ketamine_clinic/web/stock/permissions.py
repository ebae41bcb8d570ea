"""Who may do what in the stock record: a capability of the clinic's roles, kept in the
database (``StockGrant``) and set by clinic administrators on the stock settings page.

The defaults below are what a new installation starts with (loaded by migration 0002);
after that the table is the truth.
"""

from __future__ import annotations

from django.db import models

from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.stock.models import StockGrant


class StockCapability(models.TextChoices):
    RECEIVE = "receive", "Receive shipments"
    DRAW = "draw", "Draw and return at the bedside"
    WITNESS = "witness", "Witness waste and destruction"
    COUNT = "count", "Count stock and take inventories"
    DESTROY = "destroy", "Destroy, transfer, and report loss or theft"
    RESOLVE = "resolve", "Resolve discrepancies and loss cases"
    MANAGE = "manage", "Manage registrations, products and these permissions"


DEFAULT_GRANTS: dict[str, tuple[str, ...]] = {
    StockCapability.RECEIVE: (Role.PHYSICIAN, Role.NURSE, Role.CLINIC_ADMIN),
    StockCapability.DRAW: (Role.PHYSICIAN, Role.NURSE),
    StockCapability.WITNESS: (Role.PHYSICIAN, Role.NURSE),
    StockCapability.COUNT: (Role.PHYSICIAN, Role.NURSE, Role.CLINIC_ADMIN),
    StockCapability.DESTROY: (Role.PHYSICIAN, Role.CLINIC_ADMIN),
    StockCapability.RESOLVE: (Role.PHYSICIAN, Role.CLINIC_ADMIN),
    StockCapability.MANAGE: (Role.CLINIC_ADMIN,),
}


def granted(role: str) -> set[str]:
    return set(StockGrant.objects.filter(role=role).values_list("capability", flat=True))


def stock_can(user: object, capability: StockCapability) -> bool:
    """Active, and the user's role holds ``capability`` in the grant table."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    cache: dict[str, bool] = user.__dict__.setdefault("_stock_grants", {})
    if capability not in cache:
        cache[capability] = StockGrant.objects.filter(
            role=getattr(user, "role", ""), capability=capability).exists()
    return cache[capability]
