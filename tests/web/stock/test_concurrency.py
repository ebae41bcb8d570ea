"""Two writers drawing from the same vial at once on PostgreSQL: one wins, the other is
refused, and no balance ever goes below zero."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from ketamine_clinic.errors import UsageError


@pytest.mark.postgres_only
def test_two_concurrent_draws_of_one_vial_never_overdraw_it(transactional_db: Any,
                                                            cast: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks between two connections)")
    from datetime import timedelta

    from django.utils import timezone

    from ketamine_clinic.web.protocols.services import protocol_current, protocol_sync_shipped
    from ketamine_clinic.web.sessions import services as sessions
    from ketamine_clinic.web.stock import services
    from ketamine_clinic.web.stock.models import LedgerEntry
    from tests.web.sessions.conftest import make_consent, make_order
    from tests.web.stock.conftest import SUPPLIER, _actor, register

    services.ensure_default_grants()
    register(cast, cast.denver, "AF1234563")
    product = services.product_create(actor=_actor(cast.dave), ndc="0143-9508-10",
                                      name="Ketamine hydrochloride", strength_mg_per_ml="50",
                                      container_volume_ml="10")
    receipt = services.stock_receive(
        actor=_actor(cast.bob), site=cast.denver, product=product, lot_number="KX1",
        expires_on=timezone.localdate() + timedelta(days=60), containers=1,
        invoice_number="I-1", received_on=timezone.localdate(), **SUPPLIER).record
    vial = receipt.containers.get()
    protocol_sync_shipped()
    pv = protocol_current("clinic-standard")
    order = make_order(cast, cast.ana, pv)
    make_consent(cast, cast.ana, pv)
    session = sessions.session_schedule(actor=_actor(cast.bob), order=order,
                                        scheduled_for=timezone.now(), chair="1")
    services.stock_count(actor=_actor(cast.bob), site=cast.denver, moment="opening",
                         counted_ml={vial.pk: "10"})

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def draw() -> None:
        try:
            barrier.wait()
            services.stock_draw(actor=_actor(cast.bob), session=session, container=vial,
                                volume_ml="6")
            outcomes.append("drawn")
        except UsageError as exc:
            outcomes.append(f"refused: {exc.problem}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=draw) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.split(":")[0] for o in outcomes) == ["drawn", "refused"], outcomes
    vial.refresh_from_db()
    assert vial.balance_mg == 200  # 500 - 300, once
    balances = list(LedgerEntry.objects.filter(container=vial).values_list(
        "container_balance_mg", flat=True))
    assert min(balances) >= 0
