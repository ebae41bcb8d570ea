"""Issue 13, finding 2: a request's PK work is bounded by settings. A population beyond
``PK_SYNC_MAX_WORK`` patients × times runs as a background job with progress; beyond
``PK_JOB_MAX_WORK`` (or beyond the times, segments or percentiles allowed) it is refused
with a message naming the field and the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from ketamine_clinic.web.accounts.models import ApiToken

BODY = {"model": "fanta2015-otto2021", "drug": "esketamine", "age_years": 30,
        "weight_kg": 70, "seed": 3, "segments": [
    {"start_min": 0, "end_min": 240, "rate_mg_per_h": 60}], "times_min": [0, 60, 240, 600]}


def _api(client: Client, user: Any, path: str, body: Any = None) -> Any:
    _, raw = ApiToken.issue(user)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    if body is None:
        return client.get(f"/api/v1{path}", **headers)
    return client.post(f"/api/v1{path}", data=json.dumps(body),
                       content_type="application/json", **headers)


def test_a_population_beyond_one_runs_work_is_refused_naming_the_limit(
    cast: Any, client: Client, settings: Any
) -> None:
    settings.PK_JOB_MAX_WORK = 1_000
    response = _api(client, cast.bob, "/pk/population", {**BODY, "n": 251})  # 1,004 values
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "n"
    assert "1,004" in error["message"]
    assert "1,000" in error["message"]


@pytest.mark.parametrize(("change", "field"), [
    ({"times_min": list(range(2_001))}, "times_min"),
    ({"segments": [{"start_min": i, "end_min": i + 1, "rate_mg_per_h": 1}
                   for i in range(201)]}, "segments"),
    ({"percentiles": [50.0] * 21}, "percentiles"),
    ({"n": 100_001}, "n"),
])
def test_more_times_segments_percentiles_or_patients_than_allowed_are_refused(
    cast: Any, client: Client, change: dict[str, Any], field: str
) -> None:
    response = _api(client, cast.bob, "/pk/population", {**BODY, "n": 10, **change})
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field


def test_a_large_population_runs_as_a_job_with_progress_and_the_same_result(
    cast: Any, client: Client, settings: Any, run_jobs: Any
) -> None:
    direct = _api(client, cast.bob, "/pk/population", {**BODY, "n": 300})
    assert direct.status_code == 200, direct.content
    small = direct.json()
    settings.PK_SYNC_MAX_WORK = 1_000  # 300 patients × 4 times = 1,200: a job now
    queued = _api(client, cast.bob, "/pk/population", {**BODY, "n": 300})
    assert queued.status_code == 202, queued.content
    job = queued.json()
    assert job["status"] == "queued"
    assert job["progress_percent"] == 0
    url = job["status_url"].removeprefix("/api/v1")
    assert _api(client, cast.alice, url).status_code == 404  # another user's job
    assert run_jobs() == 1
    done = _api(client, cast.bob, url).json()
    assert done["status"] == "done", done["error"]
    assert done["patients_done"] == 300
    assert done["progress_percent"] == 100
    assert done["result"] == small  # same seed, same bands as the direct answer
