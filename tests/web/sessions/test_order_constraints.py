"""The orders table holds the high-alert drug's two checks itself: an update that skips the
services cannot make the second check the signer's own, nor an order active without it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from ketamine_clinic.web.orders.models import Order


@pytest.mark.parametrize(("change", "constraint"), [
    ({"verified_by_id": "signed_by_id"}, "order_verifier_is_not_signer"),
    ({"verified_by_id": None, "verified_at": None}, "order_active_is_verified"),
    ({"signed_by_id": None}, "order_signed_has_signature"),
])
def test_the_database_refuses_an_order_without_its_two_checks(
        clinic: Any, change: dict[str, Any], constraint: str) -> None:
    order = clinic.order
    assert order.status == Order.Status.ACTIVE
    values = {k: getattr(order, v) if v == "signed_by_id" else v for k, v in change.items()}
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(**values)
    order.refresh_from_db()
    assert order.verified_by_id not in (None, order.signed_by_id)
