"""What the order pages show and refuse (every URL for every role: ``test_access.py``)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from ketamine_clinic.clinical.limit_checks import Override
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.orders.models import LimitEvent, Order

from .conftest import ORDER, Orders, World

# --------------------------------------------------------------------------- behaviour


def test_the_new_order_form_starts_from_the_protocols_defaults(world: World,
                                                                client: Client) -> None:
    client.force_login(world.cast.alice)
    page = client.get(reverse("order_new", args=[world.cast.ana.pk])).content.decode()
    assert 'value="60 mg/h"' in page
    # The suggested maximum stays inside the soft limit of 1 mg/kg/h at Ana's 70 kg [S6]:
    # 70 mg/h, not the protocol's 100 mg/h, which would need an override.
    assert 'value="70 mg/h"' in page
    assert "highest step inside the protocol&#x27;s soft limits" in page
    assert "glycopyrrolate 0.2 mg IV" in page
    assert "0.5, 1 mg/mL" in page


def test_without_a_current_screening_the_form_says_no_order_is_possible(
    world: World, client: Client
) -> None:
    client.force_login(world.cast.alice)
    page = client.get(reverse("order_new", args=[world.cast.zed.pk])).content.decode()
    assert "no current screening that allows treatment" in page
    assert "write-order" not in page


def test_the_preview_shows_every_form_of_the_dose_and_stores_nothing(
    world: World, client: Client
) -> None:
    client.force_login(world.cast.alice)
    response = client.post(reverse("order_preview", args=[world.cast.ana.pk]),
                           {**ORDER, "bag": "250 mg in 500 mL", "max_rate": "100 mg/h",
                            "protocol_version": world.pv.pk}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "<html" not in page  # a fragment
    # 60 mg/h at 70 kg from 0.5 mg/mL: 0.857 mg/kg/h and 120 mL/h
    assert re.search(r"<th>Start</th><td>0\.857</td><td>60</td><td><strong>120</strong>", page)
    assert 'name="override_code.rate_mg_per_kg_per_h"' in page  # 100 mg/h > 1 mg/kg/h
    assert Order.objects.count() == 0
    assert LimitEvent.objects.count() == 0


def test_writing_through_the_page_creates_a_draft(world: World, client: Client) -> None:
    client.force_login(world.cast.alice)
    response = client.post(reverse("order_new", args=[world.cast.ana.pk]),
                           {**ORDER, "protocol_version": world.pv.pk,
                            "premedications": ["glycopyrrolate"]})
    order = Order.objects.get()
    assert response["Location"] == reverse("order_detail", args=[order.pk])
    assert order.status == Order.Status.DRAFT
    assert [m["drug"] for m in order.premedications] == ["glycopyrrolate"]
    assert order.rescue_medications == []


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [({"bag": "500 mg in 250 mL"}, "bag", "is not a concentration"),
     ({"start_rate": "-60 mg/h"}, "start_rate", "greater than zero"),
     ({"weight_kg": "0"}, "weight_kg", "greater than zero"),
     ({"max_rate": "60 mg/kg"}, "max_rate", "not a unit for a rate")],
)
def test_a_refused_order_page_names_the_field(world: World, client: Client,
                                              change: dict[str, str], field: str,
                                              text: str) -> None:
    client.force_login(world.cast.alice)
    response = client.post(reverse("order_new", args=[world.cast.ana.pk]),
                           {**ORDER, **change, "protocol_version": world.pv.pk})
    assert response.status_code == 400
    errors = re.search(rf'id="error-{field}">(.*?)</ul>', response.content.decode(), re.S)
    assert errors is not None
    assert text in errors.group(1)
    assert Order.objects.count() == 0


def test_a_soft_limit_on_the_page_is_overridden_with_a_reason(world: World,
                                                               client: Client) -> None:
    client.force_login(world.cast.alice)
    url = reverse("order_new", args=[world.cast.ana.pk])
    data = {**ORDER, "max_rate": "100 mg/h", "protocol_version": world.pv.pk}
    refused = client.post(url, data)
    assert refused.status_code == 400
    assert "give a reason code and an explanation" in refused.content.decode()
    ok = client.post(url, {**data, "override_code.rate_mg_per_kg_per_h": "prior-tolerance",
                           "override_text.rate_mg_per_kg_per_h": "100 mg/h in March"})
    assert ok.status_code == 302
    assert Order.objects.get().overrides[0]["reason_code"] == "prior-tolerance"


def test_a_nurse_does_not_see_a_signed_orders_numbers_before_the_double_check(
    world: World, client: Client
) -> None:
    order = world.signed(bag="250 mg in 500 mL")  # 0.5 mg/mL: 120 mL/h at the start
    client.force_login(world.cast.bob)
    detail = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert 'id="numbers-hidden"' in detail
    assert "120" not in detail
    assert "0.5 mg/mL" not in detail
    verify = client.get(reverse("order_verify", args=[order.pk])).content.decode()
    assert "60 mg/h" in verify  # the ordered dose, in the protocol's unit
    assert "120" not in verify
    assert "250 mg" not in verify
    assert client.get(reverse("order_pdf", args=[order.pk])).status_code == 403
    client.force_login(world.cast.alice)  # the prescriber sees them
    assert "120" in client.get(reverse("order_detail", args=[order.pk])).content.decode()


def test_a_mismatched_double_check_on_the_page_says_so_and_keeps_the_order_signed(
    world: World, client: Client
) -> None:
    order = world.signed()
    client.force_login(world.cast.bob)
    response = client.post(reverse("order_verify", args=[order.pk]),
                           {"concentration_mg_per_ml": "1", "pump_rate_ml_per_h": "6"})
    assert response.status_code == 400
    assert "does not match the signed order" in response.content.decode()
    order.refresh_from_db()
    assert order.status == Order.Status.SIGNED
    client.post(reverse("order_verify", args=[order.pk]),
                {"concentration_mg_per_ml": "1 mg/mL", "pump_rate_ml_per_h": "60 mL/h"})
    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE


def test_the_order_page_shows_the_titration_table_and_a_block_for_the_pk_simulation(
    world: World, client: Client
) -> None:
    from pathlib import Path

    order = world.active(max_rate="100 mg/h",
                         overrides=[Override("rate_mg_per_kg_per_h", "other", "ok")])
    client.force_login(world.cast.bob)
    page = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    for rate in (60, 70, 80, 90, 100):
        assert f"<td>{rate}</td><td><strong>{rate}</strong></td>" in page  # 1 mg/mL
    template = (Path(__file__).parents[3] / "src/ketamine_clinic/web/templates/orders"
                / "order_detail.html").read_text()
    assert "{% block pk_simulation %}" in template


def test_the_pdf_sheet_has_the_patient_the_weight_the_table_and_the_limits(
    world: World, client: Client, tmp_path: Any
) -> None:
    order = world.active(bag="250 mg in 500 mL")
    client.force_login(world.cast.bob)
    response = client.get(reverse("order_pdf", args=[order.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(p.extract_text(extraction_mode="layout") for p in reader.pages)
    assert "RUIZ, Ana" in text
    assert "DEN-1" in text
    assert "70 kg" in text
    assert "0.5 mg/mL" in text
    assert re.search(r"0\s+0\s+0\.857\s+60\s+120", text)  # step 0: 60 mg/h = 120 mL/h
    assert "Rate (mg/kg/h)" in text
    assert AuditEntry.objects.filter(action="order.pdf", object_id=str(order.pk)).exists()


def test_the_patient_page_lists_series_and_orders_and_offers_a_new_order(
    orders: Orders, client: Client
) -> None:
    client.force_login(orders.w.cast.alice)
    page = client.get(reverse("patient_detail", args=[orders.w.cast.ana.pk])).content.decode()
    assert 'id="orders"' in page
    assert reverse("order_detail", args=[orders.active.pk]) in page
    assert 'id="new-order"' in page
    client.force_login(orders.w.cast.bob)
    page = client.get(reverse("patient_detail", args=[orders.w.cast.ana.pk])).content.decode()
    assert 'id="new-order"' not in page


def test_the_order_list_groups_orders_awaiting_each_step_in_few_queries(
    orders: Orders, client: Client
) -> None:
    client.force_login(orders.w.cast.bob)
    client.get(reverse("order_list"))  # warm caches (session, user)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("order_list")).content.decode()
    sections = {name: re.search(rf'id="{name}".*?</section>', page, re.S).group(0)
                for name in ("awaiting-signature", "awaiting-verification", "active")}
    assert f"order {orders.draft.pk}<" in sections["awaiting-signature"]
    assert f"order {orders.signed.pk}<" in sections["awaiting-verification"]
    assert f"order {orders.active.pk}<" in sections["active"]
    assert len(queries) <= 12


def test_the_quality_report_counts_events_by_protocol_prescriber_and_reason(
    world: World, client: Client
) -> None:
    from ketamine_clinic.web.orders.services import LimitRefusal

    with pytest.raises(LimitRefusal):  # a blocked write, kept as events
        world.write(max_rate="150 mg/h")
    world.write(max_rate="100 mg/h",
                overrides=[Override("rate_mg_per_kg_per_h", "prior-tolerance", "fine")])
    client.force_login(world.cast.dave)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("limit_report")).content.decode()
    assert len(queries) <= 12
    assert "clinic-standard v2" in page
    assert re.search(r"<td>prior-tolerance</td><td>1</td>", page)
    assert re.search(r"<td>alice</td><td>blocked</td><td>2</td>", page)
    assert 'data-chart="chart-data-' in page  # drawn by app.js (web/lib/charts.py)
    empty = client.get(reverse("limit_report"), {"start": "2001-01-01", "end": "2001-01-31"})
    assert "No limit events in this period" in empty.content.decode()
    bad = client.get(reverse("limit_report"), {"start": "2001-02-01", "end": "2001-01-31"})
    assert "must not be before the start" in bad.content.decode()


def test_a_refused_signature_says_why_the_screening_is_not_current(
    world: World, client: Client
) -> None:
    from ketamine_clinic.web.patients import services as patients

    draft = world.write()
    patients.medication_record(actor=world.actor(world.cast.alice), patient=world.cast.ana,
                               name="gabapentin")
    client.force_login(world.cast.alice)
    page = client.post(reverse("order_sign", args=[draft.pk]), follow=True).content.decode()
    assert "Not signed. Screening: Ana Ruiz has no current screening for clinic-standard " \
        "v2 that allows treatment: the patient&#x27;s facts have changed since the " \
        "screening (medications): screen the patient again." in page
    draft.refresh_from_db()
    assert draft.status == Order.Status.DRAFT
