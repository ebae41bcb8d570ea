"""The outcome report and follow-up journeys in a real browser, with screenshots."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.outcomes import services
from ketamine_clinic.web.outcomes.cohort_loader import load_synthetic_cohort
from ketamine_clinic.web.outcomes.models import FollowUpResponse
from tests.browser.conftest import log_in
from tests.web.outcomes.conftest import at, make_pv, make_series

pytestmark = pytest.mark.browser


def test_a_physician_reads_the_cohort_report_filters_it_and_exports_it(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, shot: Any
) -> None:
    load_synthetic_cohort(n_patients=60, seed=3, start_date=date(2023, 1, 2), progress=False,
                          sites=[cast.denver, cast.boulder], detail="outcomes",
                          protocols=["clinic-standard", "schwartzman-2009"])
    log_in(page, live_server, cast.alice, "a long physician passphrase")
    page.click("header >> text=Outcomes")
    page.wait_for_selector("#plot-km-diagnosis .main-svg")
    page.wait_for_selector("#plot-responders .main-svg")
    n_all = int(page.inner_text("[data-n-series]"))
    assert n_all > 60
    shot("report")
    page.locator("#plot-km-diagnosis").screenshot(
        path=str(shot("report").parent / "outcomes-km-by-diagnosis.png"))
    page.locator("#plot-trajectories").screenshot(
        path=str(shot("report").parent / "outcomes-trajectories.png"))

    page.select_option("#id_diagnosis", "crps")
    page.click("#filters button")
    page.wait_for_selector("#plot-km-diagnosis .main-svg")
    n_crps = int(page.inner_text("[data-n-series]"))
    assert 0 < n_crps < n_all
    assert "Other diagnoses" not in page.inner_text("#duration")
    shot("report-crps")

    with page.expect_download() as csv_download:
        page.click("#export-csv")
    assert csv_download.value.suggested_filename == "outcomes.csv"
    with page.expect_download() as pdf_download:
        page.click("#export-pdf")
    path = pdf_download.value.path()
    assert Path(path).read_bytes()[:4] == b"%PDF"


def test_staff_work_the_follow_up_list_and_a_patient_answers_through_a_link(
    transactional_db: Any, cast: Any, live_server: Any, page: Any, browser: Any, shot: Any
) -> None:
    pv = make_pv()
    today = timezone.localdate()
    # Last infusion 13 days ago: week 1 is overdue, week 2 is due tomorrow.
    built = make_series(cast, pv, cast.ana, today - timedelta(days=15),
                        [(8, 5), (7, 4), (6, 3)])
    services.followups_schedule(actor=Actor(user=cast.bob), series=built.series)
    for fu in built.series.follow_ups.filter(point__in=("baseline", "day1")):
        FollowUpResponse.objects.create(follow_up=fu, answered_at=at(fu.due_on, 12),
                                        pain_average_nrs=4, pain_worst_nrs=6,
                                        opioid_mme_per_day=30, entered_by=cast.bob)

    log_in(page, live_server, cast.carol, "a long front desk passphrase")
    page.click("header >> text=Follow-ups")
    page.wait_for_selector("#overdue >> text=Ruiz, Ana")
    shot("worklist")
    page.click("#overdue >> text=Enter answers")
    page.select_option("#id_pain_average_nrs", "4")
    page.select_option("#id_pain_worst_nrs", "6")
    page.select_option("#id_global_impression", "2")
    page.fill("#id_opioid_mme_per_day", "20")
    page.click("#answers button")
    page.wait_for_selector("text=Follow-up answers recorded")
    shot("answered")

    page.goto(f"{live_server.url}/follow-ups/")
    page.click("#due >> text=Enter answers")  # the next one, due soon
    page.click("text=Create a patient link")
    url = page.input_value("#patient-link")
    shot("link")

    patient_view = browser.new_context(viewport={"width": 420, "height": 900})
    phone = patient_view.new_page()
    phone.goto(url)
    assert "Ruiz" not in phone.content()
    phone.check("input[name=pain_average_nrs][value='3']")
    phone.check("input[name=pain_worst_nrs][value='5']")
    phone.check("input[name=global_impression][value='2']")
    phone.screenshot(path=str(shot("link").parent / "outcomes-patient-questionnaire.png"),
                     full_page=True)
    phone.click("text=Send my answers")
    phone.wait_for_selector("text=Thank you")
    phone.goto(url)
    assert "works only once" in phone.content()
    patient_view.close()

    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/patients/{cast.ana.pk}/")
    shot("patient-page")
    assert not errors
    page.wait_for_selector("#patient-trajectory .main-svg")
    page.locator("#outcomes").screenshot(
        path=str(shot("link").parent / "outcomes-patient-panel.png"))
    assert FollowUpResponse.objects.filter(via_patient_link=True).count() == 1
