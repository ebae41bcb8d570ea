"""The order page shows the PK prediction of the planned titration (issue 3)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.pk.simulate import Patient as Covariates
from ketamine_clinic.pk.simulate import simulate
from ketamine_clinic.web.simulation.models import Prediction
from ketamine_clinic.web.simulation.views import order_regimen


def test_the_order_regimen_follows_the_titration_table(world: Any) -> None:
    order = world.write()
    regimen = order_regimen(order)
    table = order.computed["titration_table"]
    assert regimen.segments[0].rate_mg_per_h == table[0]["rate_mg_per_h"]
    assert regimen.segments[0].start_min == 0
    assert regimen.end_min == order.planned_duration_min
    assert regimen.segments[-1].rate_mg_per_h == table[-1]["rate_mg_per_h"]


def test_the_order_page_shows_and_stores_the_prediction(world: Any, client: Client) -> None:
    order = world.active()
    client.force_login(world.cast.bob)
    body = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "Predicted concentrations for the planned titration" in body
    p = Prediction.objects.get(order=order)
    assert p.purpose == "order"
    assert p.patient == order.patient
    direct = simulate(p.model_id, Covariates(**p.inputs["patient"]), order_regimen(order),
                      [order.planned_duration_min])
    assert p.summary["plasma_at_end_ng_per_ml"] == pytest.approx(
        float(direct.plasma_ng_per_ml[0]), rel=1e-12)
    # Shown again, the unchanged prediction is not stored twice.
    client.get(reverse("order_detail", args=[order.pk]))
    assert Prediction.objects.filter(order=order).count() == 1


def test_the_prediction_stays_hidden_until_the_double_check(world: Any,
                                                             client: Client) -> None:
    order = world.signed()
    client.force_login(world.cast.bob)  # not the writer: the rates are hidden from him
    body = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "Predicted concentrations" not in body
    assert not Prediction.objects.filter(order=order).exists()
