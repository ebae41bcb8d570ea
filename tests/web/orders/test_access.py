"""Order pages: every URL for every role, for Oscar (a nurse of another site) and for
anonymous visitors, over one world built for the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import make_cast
from tests.web.access import (
    ALL,
    CLINICAL,
    PHYSICIAN,
    ROLES,
    Page,
    assert_other_site_kept_out,
    assert_role_answer,
    assert_sent_to_log_in,
    built_once,
    call,
    fresh,
    page_id,
)

from .conftest import ORDER, Orders, make_orders, make_world


@pytest.fixture(scope="module")
def orders_once(django_db_setup: None, django_db_blocker: Any,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orders]:
    with built_once(django_db_blocker, tmp_path_factory.mktemp("orders-access")):
        yield make_orders(make_world(make_cast()))


@pytest.fixture
def orders(orders_once: Orders, db: Any) -> Orders:
    """An order at each step, built once for the module (each case rolled back after it)."""
    return fresh(orders_once)


REPORTS = frozenset({"physician", "clinic_admin", "auditor"})


# scoped pages: Oscar gets 404 (audited) where his role is allowed.
PAGES: list[Page[Orders]] = [
    Page("order list", "get", lambda o: reverse("order_list"), CLINICAL, scoped=False),
    Page("new order form", "get", lambda o: reverse("order_new", args=[o.w.cast.ana.pk]),
         PHYSICIAN),
    Page("write order", "post", lambda o: reverse("order_new", args=[o.w.cast.ana.pk]),
         PHYSICIAN, lambda o, _u: {**ORDER, "protocol_version": o.w.pv.pk}),
    Page("dose preview", "post", lambda o: reverse("order_preview", args=[o.w.cast.ana.pk]),
         PHYSICIAN, lambda o, _u: {**ORDER, "protocol_version": o.w.pv.pk}),
    Page("order detail", "get", lambda o: reverse("order_detail", args=[o.active.pk]), ALL),
    Page("sign", "post", lambda o: reverse("order_sign", args=[o.draft.pk]), PHYSICIAN),
    Page("verify form", "get", lambda o: reverse("order_verify", args=[o.signed.pk]),
         CLINICAL),
    Page("verify", "post", lambda o: reverse("order_verify", args=[o.signed.pk]), CLINICAL,
         lambda o, _u: {"concentration_mg_per_ml": "1", "pump_rate_ml_per_h": "60"}),
    Page("discontinue", "post", lambda o: reverse("order_discontinue", args=[o.active.pk]),
         PHYSICIAN, lambda o, _u: {"reason": "stopped"}),
    Page("complete", "post", lambda o: reverse("order_complete", args=[o.active.pk]),
         PHYSICIAN),
    Page("change form", "get", lambda o: reverse("order_change", args=[o.active.pk]),
         PHYSICIAN),
    Page("order sheet pdf", "get", lambda o: reverse("order_pdf", args=[o.active.pk]), ALL),
    Page("limit report", "get", lambda o: reverse("limit_report"), REPORTS,
         scoped=False),
]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_pages_it_is_allowed(orders: Orders, client: Client,
                                                        page: Page[Orders], role: str) -> None:
    user = orders.w.cast.by_role()[role]
    client.force_login(user)
    # 400: the view was reached and refused the act itself (Alice signed the order she
    # would verify; the services' refusals are tested on their own).
    reached = (200, 302, 400) if page.name == "verify" and role == "physician" else (200, 302)
    assert_role_answer(call(client, page, orders, user), role, page, reached)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_a_user_of_another_site_cannot_reach_the_patients_orders(orders: Orders,
                                                                 client: Client,
                                                                 page: Page[Orders]) -> None:
    # Oscar, a Boulder nurse; Ana is at Denver.
    assert_other_site_kept_out(client, page, orders, orders.w.cast.oscar, hidden=b"Ruiz")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_anonymous_visitors_are_sent_to_log_in(orders: Orders, client: Client,
                                               page: Page[Orders]) -> None:
    assert_sent_to_log_in(call(client, page, orders))
