"""The PK simulator page, the stored predictions and the PK API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.pk.regimen import Regimen, Segment
from ketamine_clinic.pk.simulate import Patient as Covariates
from ketamine_clinic.pk.simulate import simulate
from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.simulation.models import Prediction

FORM = {"model": "domino", "drug": "racemic", "weight_kg": "70", "age_years": "45",
        "segments": "0:60:60\n60:240:90", "boluses": "", "threshold_ng_per_ml": "100",
        "population": "on"}


@pytest.mark.parametrize(("role", "allowed"), [
    ("physician", True), ("nurse", True), ("front_desk", False), ("clinic_admin", False),
    ("auditor", False)])
def test_the_simulator_is_for_clinicians(cast: Any, client: Client, role: str,
                                        allowed: bool) -> None:
    client.force_login(cast.by_role()[role])
    assert client.get(reverse("simulator")).status_code == (200 if allowed else 403)


def test_a_simulation_is_stored_with_its_inputs_and_model_version(cast: Any,
                                                                   client: Client) -> None:
    client.force_login(cast.alice)
    response = client.post(reverse("simulator"), FORM)
    assert response.status_code == 200
    p = Prediction.objects.get()
    assert p.model_id == "domino"
    assert p.model_version
    assert p.inputs["regimen"]["segments"][1] == {"start_min": 60.0, "end_min": 240.0,
                                                  "rate_mg_per_h": 90.0}
    assert p.inputs["population"] is None  # Domino has no published IIV
    assert "no published inter-individual variability" in p.summary["population_note"]
    # The stored summary equals an independent call of the core at the end of the infusion.
    direct = simulate("domino", Covariates(70, 45), Regimen(
        (Segment(0, 60, 60), Segment(60, 240, 90))), [240.0], threshold_ng_per_ml=100)
    assert p.summary["plasma_at_end_ng_per_ml"] == pytest.approx(
        float(direct.plasma_ng_per_ml[0]), rel=1e-9)
    assert p.summary["threshold_crossing_min"]["plasma"] == pytest.approx(
        direct.threshold_crossing_min["plasma"], rel=1e-9)
    assert "plotly" in response.content.decode().lower()
    assert AuditEntry.objects.filter(action="prediction.run", username="alice").exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"segments": "0:60:abc"}, "segments"),
    ({"segments": "60:0:60"}, "segment"),
    ({"segments": "0:60:60\n30:90:60"}, "segment"),
    ({"weight_kg": "-3"}, "weight_kg"),
    ({"model": "nonsense"}, "model"),
])
def test_bad_simulator_input_names_the_field_and_stores_nothing(cast: Any, client: Client,
                                                                change: dict[str, str],
                                                                field: str) -> None:
    client.force_login(cast.bob)
    response = client.post(reverse("simulator"), {**FORM, **change})
    assert response.status_code == 400
    assert field in response.content.decode()
    assert not Prediction.objects.exists()


def test_a_model_with_published_variability_gets_a_population_band(cast: Any,
                                                                    client: Client) -> None:
    client.force_login(cast.alice)
    client.post(reverse("simulator"), {**FORM, "model": "fanta2015-otto2021",
                                       "drug": "esketamine", "age_years": "30"})
    p = Prediction.objects.get()
    assert p.inputs["population"]["n"] > 1
    assert p.summary["population"]["percentiles"] == [5.0, 50.0, 95.0]


def test_what_if_draws_another_rate_over_the_stored_prediction(cast: Any,
                                                                client: Client) -> None:
    client.force_login(cast.bob)
    client.post(reverse("simulator"), FORM)
    base = Prediction.objects.get()
    response = client.post(reverse("simulation_what_if", args=[base.pk]),
                           {"rate_mg_per_h": "30"})
    assert response.status_code == 200
    assert "What if the rate were 30 mg/h" in response.content.decode()
    assert Prediction.objects.filter(purpose="what-if").count() == 1
    bad = client.post(reverse("simulation_what_if", args=[base.pk]), {"rate_mg_per_h": "x"})
    assert bad.status_code == 400


def _api(client: Client, user: Any, path: str, body: Any = None) -> Any:
    _, raw = ApiToken.issue(user)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    if body is None:
        return client.get(f"/api/v1{path}", **headers)
    return client.post(f"/api/v1{path}", data=json.dumps(body),
                       content_type="application/json", **headers)


BODY = {"model": "kamp2020", "weight_kg": 70, "segments": [
    {"start_min": 0, "end_min": 240, "rate_mg_per_h": 60}], "times_min": [0, 60, 240, 600]}


def test_the_api_lists_every_model_with_its_compound_and_sampling(cast: Any,
                                                                  client: Client) -> None:
    rows = _api(client, cast.alice, "/pk/models").json()
    ids = {r["id"] for r in rows}
    assert {"domino", "kamp2020", "clements", "hijazi2003", "herd2007", "elkomy2015",
            "sherwin2015", "fanta2015-otto2021", "simons2022", "dahan2011-crps"} <= ids
    assert all(r["compound"] for r in rows)


def test_the_api_simulates_one_patient_in_the_cli_json_shape(cast: Any, client: Client) -> None:
    data = _api(client, cast.alice, "/pk/simulate", BODY).json()
    assert data["model"] == "kamp2020"
    assert data["times_min"] == [0, 60, 240, 600]
    assert data["plasma_ng_per_ml"][0] == 0
    assert data["plasma_ng_per_ml"][2] > data["plasma_ng_per_ml"][3] > 0
    assert data["norketamine_ng_per_ml"] is None


def test_the_api_population_is_reproducible_with_a_seed(cast: Any, client: Client) -> None:
    body = {**BODY, "model": "fanta2015-otto2021", "drug": "esketamine", "age_years": 30,
            "n": 200, "seed": 7, "percentiles": [5, 50, 95]}
    a = _api(client, cast.bob, "/pk/population", body).json()
    b = _api(client, cast.bob, "/pk/population", body).json()
    assert a["bands_ng_per_ml"] == b["bands_ng_per_ml"]
    low, mid, high = (a["bands_ng_per_ml"]["plasma"][i][2] for i in range(3))
    assert low < mid < high


@pytest.mark.parametrize(("change", "field"), [
    ({"model": "warp9"}, "model"),
    ({"segments": [{"start_min": -5, "end_min": 10, "rate_mg_per_h": 60}]}, "segment"),
    ({"times_min": [-1, 10]}, "times_min"),
    ({"segments": [{"start_min": 0, "end_min": 10, "rate_mg_per_h": "fast"}]},
     "segments.0.rate_mg_per_h"),
])
def test_bad_api_input_names_the_argument(cast: Any, client: Client, change: dict[str, Any],
                                          field: str) -> None:
    response = _api(client, cast.alice, "/pk/simulate", {**BODY, **change})
    assert response.status_code in (400, 422)
    assert field in {e["field"] for e in response.json()["errors"]}


def test_a_population_of_a_model_without_published_variability_needs_omegas(
        cast: Any, client: Client) -> None:
    response = _api(client, cast.bob, "/pk/population", {**BODY, "n": 10, "seed": 1})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]


def test_front_desk_cannot_use_the_pk_api(cast: Any, client: Client) -> None:
    assert _api(client, cast.carol, "/pk/simulate", BODY).status_code == 403


@pytest.mark.parametrize(("text", "says"), [
    ("0:60", "write the start minute, the end minute and the rate in mg/h"),
    ("0:sixty:60", "the minutes and the rate must be numbers"),
])
def test_a_badly_written_segment_is_explained_in_words(text: str, says: str) -> None:
    from ketamine_clinic.errors import UsageError
    from ketamine_clinic.web.simulation.forms import parse_boluses, parse_segments

    with pytest.raises(UsageError, match=says) as caught:
        parse_segments(text)
    assert "_MIN" not in str(caught.value)
    with pytest.raises(UsageError, match="write the minute and the dose in mg"):
        parse_boluses("30")
