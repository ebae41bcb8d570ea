"""A session's protocol rules, read from the stored protocol version (the version the
order was written under) through the core (``clinical.bedside.rules``)."""

from __future__ import annotations

from typing import Any

from ketamine_clinic.clinical.bedside.rules import SessionRules, session_rules
from ketamine_clinic.web.orders.dosing import order_rate_rules

__all__ = ["SessionRules", "order_dosing", "rules_for_version"]


def rules_for_version(protocol_version: Any) -> SessionRules:
    """The rules of a stored ``ProtocolVersion`` row."""
    return session_rules(protocol_version.protocol())


def order_dosing(order: Any) -> Any:
    """What a session's rate checks need from its signed order: the orders area's
    ``order_rate_rules``."""
    return order_rate_rules(order)
