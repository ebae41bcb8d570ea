"""Follow-up schedule, staff answers and corrections, the patient's link, the worklist."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.outcomes import services
from ketamine_clinic.web.outcomes.models import FollowUp, FollowUpLink, FollowUpResponse
from tests.web.outcomes.conftest import answer, make_series

ANSWERS = {"pain_average_nrs": "3", "pain_worst_nrs": "5", "global_impression": "2",
           "opioid_mme_per_day": "15"}


def _answers(**kw: Any) -> services.Answers:
    return services.Answers.check(**{**ANSWERS, **kw})


@pytest.fixture
def ana_series(cast: Any, pv: Any) -> Any:
    start = timezone.localdate() - timedelta(days=10)
    return make_series(cast, pv, cast.ana, start, [(7, 4), (6, 3), (5, 2)])


def test_scheduling_creates_baseline_day1_per_session_and_series_points_once(
        cast: Any, ana_series: Any) -> None:
    new = services.followups_schedule(actor=Actor(user=cast.bob), series=ana_series.series)
    points = sorted((f.point, f.session.visit_number if f.session else 0) for f in new)
    assert points == sorted([("baseline", 1), ("day1", 1), ("day1", 2), ("day1", 3),
                             ("week1", 0), ("week2", 0), ("week4", 0), ("week8", 0),
                             ("week12", 0)])
    last_day = timezone.localdate(ana_series.sessions[-1].scheduled_for)
    week4 = next(f for f in new if f.point == "week4")
    assert week4.due_on == last_day + timedelta(days=28)
    assert services.followups_schedule(actor=Actor(user=cast.bob),
                                       series=ana_series.series) == []


def test_series_points_wait_until_the_series_is_complete(cast: Any, pv: Any) -> None:
    start = timezone.localdate() - timedelta(days=3)
    built = make_series(cast, pv, cast.ana, start, [(7, 4)], planned=5)
    new = services.followups_schedule(actor=Actor(user=cast.bob), series=built.series)
    assert sorted(f.point for f in new) == ["baseline", "day1"]


def test_staff_answers_once_and_corrections_keep_the_original(cast: Any,
                                                               ana_series: Any) -> None:
    fu = answer(cast, ana_series, "week1", 0, answered=False, due=timezone.localdate())
    first = services.followup_respond(actor=Actor(user=cast.bob), follow_up=fu,
                                      answers=_answers())
    with pytest.raises(UsageError) as again:
        services.followup_respond(actor=Actor(user=cast.bob), follow_up=fu, answers=_answers())
    assert again.value.field == "follow_up"
    with pytest.raises(UsageError) as no_reason:
        services.followup_respond(actor=Actor(user=cast.bob), follow_up=fu,
                                  answers=_answers(), corrects=first)
    assert no_reason.value.field == "correction_reason"
    fixed = services.followup_respond(actor=Actor(user=cast.bob), follow_up=fu,
                                      answers=_answers(pain_average_nrs="4"), corrects=first,
                                      correction_reason="patient meant four")
    assert fixed.corrects_id == first.pk
    first.refresh_from_db()
    assert first.pain_average_nrs == 3
    assert FollowUpResponse.objects.filter(follow_up=fu).count() == 2


@pytest.mark.parametrize(("field", "value"), [
    ("pain_average_nrs", "11"), ("pain_average_nrs", "-1"), ("pain_average_nrs", "3.5"),
    ("pain_worst_nrs", "2"), ("global_impression", "8"), ("opioid_mme_per_day", "-5"),
    ("opioid_mme_per_day", "50000"), ("pain_worst_nrs", ""),
])
def test_bad_answers_are_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(UsageError) as err:
        _answers(**{field: value})
    assert err.value.field == field


def test_the_staff_page_records_answers_and_a_correction(cast: Any, client: Client,
                                                          ana_series: Any) -> None:
    fu = answer(cast, ana_series, "week1", 0, answered=False, due=timezone.localdate())
    client.force_login(cast.carol)
    url = reverse("followup_detail", args=[fu.pk])
    now = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    response = client.post(url, {**ANSWERS, "answered_at": now})
    assert response.status_code == 302
    first = FollowUpResponse.objects.get(follow_up=fu)
    assert first.entered_by == cast.carol
    bad = client.post(url, {**ANSWERS, "pain_average_nrs": "5", "answered_at": now,
                            "corrects": first.pk})
    assert bad.status_code == 400
    assert "required for a correction" in bad.content.decode()
    ok = client.post(url, {**ANSWERS, "pain_average_nrs": "5", "answered_at": now,
                           "corrects": first.pk, "correction_reason": "typo"})
    assert ok.status_code == 302
    body = client.get(url).content.decode()
    assert f'class="error-row" data-response="{first.pk}"' in body


def test_the_patient_link_works_anonymously_for_its_one_follow_up_and_only_once(
        cast: Any, client: Client, ana_series: Any) -> None:
    fu = answer(cast, ana_series, "week2", 0, answered=False, due=timezone.localdate())
    other = answer(cast, ana_series, "week4", 0, answered=False, due=timezone.localdate())
    link, raw = services.followup_link_issue(actor=Actor(user=cast.bob), follow_up=fu)
    assert link.token_sha256 != raw  # only the digest is stored
    url = reverse("patient_questionnaire", args=[raw])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Ruiz" not in body  # only the questionnaire: no name, no record
    assert "DEN-1" not in body
    assert page["Referrer-Policy"] == "same-origin"
    done = client.post(url, {k: v for k, v in ANSWERS.items()})
    assert done.status_code == 200
    assert "Thank you" in done.content.decode()
    saved = FollowUpResponse.objects.get(follow_up=fu)
    assert saved.via_patient_link
    assert saved.entered_by is None
    assert not FollowUpResponse.objects.filter(follow_up=other).exists()
    again = client.post(url, ANSWERS)
    assert again.status_code == 410
    assert client.get(url).status_code == 410
    assert FollowUpResponse.objects.filter(follow_up=fu).count() == 1
    assert AuditEntry.objects.filter(action="follow_up.link_refused").count() == 2


def test_an_expired_link_is_refused_and_an_unknown_one_is_not_found(
        cast: Any, client: Client, ana_series: Any) -> None:
    fu = answer(cast, ana_series, "week2", 0, answered=False, due=timezone.localdate())
    link, raw = services.followup_link_issue(actor=Actor(user=cast.bob), follow_up=fu)
    FollowUpLink.objects.filter(pk=link.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(reverse("patient_questionnaire", args=[raw]), ANSWERS)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert not FollowUpResponse.objects.filter(follow_up=fu).exists()
    assert client.get(reverse("patient_questionnaire", args=["x" * 43])).status_code == 404


def test_a_new_link_ends_the_old_one(cast: Any, client: Client, ana_series: Any) -> None:
    fu = answer(cast, ana_series, "week2", 0, answered=False, due=timezone.localdate())
    _, old = services.followup_link_issue(actor=Actor(user=cast.bob), follow_up=fu)
    _, new = services.followup_link_issue(actor=Actor(user=cast.bob), follow_up=fu)
    assert client.get(reverse("patient_questionnaire", args=[old])).status_code == 410
    assert client.get(reverse("patient_questionnaire", args=[new])).status_code == 200


def test_the_link_does_not_log_anyone_in(cast: Any, client: Client, ana_series: Any) -> None:
    fu = answer(cast, ana_series, "week2", 0, answered=False, due=timezone.localdate())
    _, raw = services.followup_link_issue(actor=Actor(user=cast.bob), follow_up=fu)
    client.get(reverse("patient_questionnaire", args=[raw]))
    assert client.get(reverse("patient_detail", args=[cast.ana.pk])).status_code == 302
    assert client.get(reverse("followup_detail", args=[fu.pk])).status_code == 302


def test_the_worklist_lists_what_is_overdue_and_due_soon_at_my_sites(
        cast: Any, client: Client, ana_series: Any, pv: Any) -> None:
    today = timezone.localdate()
    overdue = answer(cast, ana_series, "week1", 0, answered=False, due=today - timedelta(days=2))
    soon = answer(cast, ana_series, "week2", 0, answered=False, due=today + timedelta(days=1))
    later = answer(cast, ana_series, "week4", 0, answered=False, due=today + timedelta(days=30))
    done = answer(cast, ana_series, "week8", 3, due=today)
    zed = make_series(cast, pv, cast.zed, today - timedelta(days=9), [(7, 3)])
    elsewhere = answer(cast, zed, "week1", 0, answered=False, due=today)
    client.force_login(cast.bob)
    body = client.get(reverse("followup_worklist")).content.decode()
    assert f'data-follow-up="{overdue.pk}"' in body
    assert f'data-follow-up="{soon.pk}"' in body
    for hidden in (later, done, elsewhere):
        assert f'data-follow-up="{hidden.pk}"' not in body
    api = client.get("/api/v1/follow-ups/due").json()
    assert [(r["id"], r["overdue"]) for r in api] == [(overdue.pk, True), (soon.pk, False)]


def test_a_booster_is_suggested_when_relief_is_lost(cast: Any, client: Client,
                                                    pv: Any) -> None:
    start = timezone.localdate() - timedelta(days=40)
    built = make_series(cast, pv, cast.ana, start, [(8, 3)])
    answer(cast, built, "week1", 3)
    client.force_login(cast.bob)
    assert "Booster suggested" not in client.get(
        reverse("patient_detail", args=[cast.ana.pk])).content.decode()
    answer(cast, built, "week2", 7)  # 12.5% below baseline: relief lost
    page = client.get(reverse("patient_detail", args=[cast.ana.pk])).content.decode()
    assert 'id="booster-suggested"' in page
    worklist = client.get(reverse("followup_worklist")).content.decode()
    assert "Ruiz, Ana" in worklist.split('id="boosters"')[1]


def test_a_protocol_may_set_its_own_loss_of_response_rule(cast: Any, client: Client) -> None:
    from tests.web.outcomes.conftest import make_pv

    lenient = make_pv("lenient", extra="[outcomes]\nloss_of_response_percent = 20\n"
                                        'loss_of_response_source = "test protocol"\n')
    built = make_series(cast, lenient, cast.ana, date(2025, 1, 6), [(8, 2)])
    answer(cast, built, "week1", 6)  # 25%: lost by the clinic's 30%, kept by 20%
    client.force_login(cast.alice)
    got = client.get("/api/v1/outcomes/report").json()["report"]
    assert got["loss_of_response"] == {"percent": 20.0, "source": "test protocol"}
    assert got["relief_by_diagnosis"]["curves"]["other"]["events"] == 0


def test_the_patient_page_shows_series_follow_ups_and_the_trajectory(
        cast: Any, client: Client, ana_series: Any) -> None:
    services.followups_schedule(actor=Actor(user=cast.bob), series=ana_series.series)
    client.force_login(cast.erin)
    body = client.get(reverse("patient_detail", args=[cast.ana.pk])).content.decode()
    assert 'id="outcomes"' in body
    assert "3 of 3 planned sessions given" in body
    assert 'id="patient-trajectory"' in body
    assert "Enter answers" not in body
    traj = client.get(f"/api/v1/patients/{cast.ana.pk}/pain-trajectory").json()
    assert [p["nrs"] for p in traj["session_pain"]] == [7, 4, 6, 3, 5, 2]
    assert len(traj["sessions"]) == 3
    assert FollowUp.objects.filter(series=ana_series.series).count() == 9
