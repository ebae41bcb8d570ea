"""The discharge instruction sheet: what it derives from the session's effective timeline,
and what the PDF says (text extracted with pypdf)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from ketamine_clinic.clinical.discharge import no_driving_until
from ketamine_clinic.web.documents.selectors import session_summary

from .factories import DENVER, add_entry, at, loaded, make_session, rate


def pdf_text(client: Client, session: Any) -> str:
    response = client.get(reverse("session_instructions_pdf", args=[session.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages))


# --------------------------------------------------------------------------- the summary


def test_the_end_time_is_the_stop_entry(finished_session: Any) -> None:
    summary = session_summary(finished_session)
    assert summary.infusion_started_at == at(9, 30)
    assert summary.infusion_ended_at == at(13, 30)


def test_the_total_is_integrated_over_the_rate_segments(finished_session: Any) -> None:
    # 1 h at 20 mg/h + 3 h at 30 mg/h, by hand.
    assert session_summary(finished_session).ketamine_total_mg == Fraction(110)


def test_the_no_driving_time_is_24_hours_after_the_end_by_the_reference_data(
        finished_session: Any) -> None:
    summary = session_summary(finished_session)
    expected = no_driving_until(at(13, 30))
    assert summary.no_driving is not None
    assert summary.no_driving.until == expected.until
    assert summary.no_driving.until - at(13, 30) == timedelta(hours=expected.hours)


def test_the_premedication_and_the_next_session_are_found(finished_session: Any) -> None:
    summary = session_summary(finished_session)
    assert [(m.drug, m.dose_text, m.route) for m in summary.medicines] == [
        ("midazolam", "2 mg", "IV")]
    assert summary.next_session is not None
    assert summary.next_session.scheduled_for == at(9, 0, day=4)


def test_a_corrected_rate_replaces_the_original(cast: Any, finished_session: Any) -> None:
    original = finished_session.entries.get(kind="rate_change")
    add_entry(finished_session, "rate_change", at(10, 30), rate(25), by=cast.alice,
              corrects=original, reason="pump showed 25 mg/h")
    # 1 h × 20 + 3 h × 25 = 95 mg
    assert session_summary(finished_session).ketamine_total_mg == Fraction(95)


def test_a_corrected_stop_time_moves_the_end_and_the_no_driving_time(
        cast: Any, finished_session: Any) -> None:
    stop = finished_session.entries.get(kind="stop")
    add_entry(finished_session, "stop", at(13, 45), {"reason": "planned end"}, by=cast.alice,
              corrects=stop, reason="stop was charted 15 min early")
    summary = session_summary(finished_session)
    assert summary.infusion_ended_at == at(13, 45)
    assert summary.no_driving is not None
    assert summary.no_driving.until == no_driving_until(at(13, 45)).until


def test_a_stop_entered_in_error_leaves_the_infusion_without_an_end(
        cast: Any, finished_session: Any) -> None:
    stop = finished_session.entries.get(kind="stop")
    add_entry(finished_session, "entered_in_error", at(13, 31), by=cast.alice, corrects=stop,
              reason="wrong patient")
    summary = session_summary(finished_session)
    assert summary.infusion_ended_at is None
    assert summary.no_driving is None


def test_a_premedication_entered_in_error_is_not_listed(cast: Any,
                                                        finished_session: Any) -> None:
    premed = finished_session.entries.get(kind="premedication")
    add_entry(finished_session, "entered_in_error", at(9, 21), by=cast.bob, corrects=premed,
              reason="charted on the wrong patient")
    assert session_summary(finished_session).medicines == ()


# --------------------------------------------------------------------------- the PDF


def test_the_pdf_names_the_patient_the_end_time_and_the_no_driving_clock_time(
        cast: Any, finished_session: Any, client: Client) -> None:
    cast.denver.phone = "303-555-0142"
    cast.denver.save()
    client.force_login(cast.bob)
    text = pdf_text(client, finished_session)
    assert "Ana Ruiz" in text
    assert "Ana Ruiz · MRN DEN-1" in text  # the footer of every page
    assert "Your infusion ended on Monday, March 3, 2025 at 1:30 PM" in text
    assert "Do not drive until Tuesday, March 4, 2025 at 1:30 PM" in text
    assert "For 24 hours after that" in text
    assert "110 mg in total" in text
    assert "Midazolam 2 mg IV at 9:20 AM" in text


def test_the_pdf_carries_the_protocols_instructions_and_whom_to_call(
        cast: Any, finished_session: Any, client: Client) -> None:
    cast.denver.phone = "303-555-0142"
    cast.denver.save()
    client.force_login(cast.alice)
    text = pdf_text(client, finished_session)
    instructions = [n.text for n in loaded(finished_session.order.protocol_version)
                    .discharge_instructions]
    assert instructions
    for line in instructions:
        assert re.sub(r"\s+", " ", line) in text
    # What the issue asks the sheet to say, as the clinic-standard protocol words it:
    assert "Avoid strenuous activity" in text
    assert "drowsy" in text
    assert "Changes in mood, perception" in text
    assert "call the clinic: 303-555-0142" in text
    assert "In an emergency call 911" in text
    assert "Tuesday, March 4, 2025 at 9:00 AM, Denver" in text  # the next session
    assert "Front Range Pain & Ketamine Clinic" in text


def test_the_sheet_falls_back_to_the_clinics_instructions_when_the_protocol_is_unreadable(
        cast: Any, finished_session: Any, client: Client) -> None:
    from ketamine_clinic.web.protocols.models import ProtocolVersion

    pv = finished_session.order.protocol_version
    # A stored version the current loader refuses (e.g. written by an older release).
    ProtocolVersion.objects.filter(pk=pv.pk).update(toml_text="format = 99\n")
    client.force_login(cast.bob)
    html = client.get(reverse("session_instructions", args=[finished_session.pk]))
    assert b"the clinic&#x27;s default instructions are printed instead" in html.content
    text = pdf_text(client, finished_session)
    assert "No strenuous exercise" in text
    assert "Call the clinic straight away if you have" in text
    assert "Do not drive until Tuesday, March 4, 2025 at 1:30 PM" in text
    emergency = text.index("Call 911 now if you have")
    assert emergency < text.index("chest pain") < text.index("Call the clinic straight away")


EMERGENCY_SYMPTOMS = ("chest pain", "trouble breathing", "cannot stay awake")


def test_emergency_symptoms_send_the_patient_to_the_emergency_number_not_the_clinic(
        cast: Any, finished_session: Any, client: Client) -> None:
    from ketamine_clinic.web.documents.instructions import instruction_sheet

    sheet = instruction_sheet(session_summary(finished_session))
    assert "911" in sheet.emergency.heading
    box = " ".join(sheet.emergency.bullets)
    for symptom in EMERGENCY_SYMPTOMS:
        assert symptom in box
    clinic_lines = [b for sec in sheet.sections for b in sec.bullets]
    clinic_lines += [line for line in sheet.instructions if "call the clinic" in line.lower()]
    for line in clinic_lines:
        assert not any(symptom in line.lower() for symptom in EMERGENCY_SYMPTOMS), line
    client.force_login(cast.bob)
    text = pdf_text(client, finished_session)
    start = text.index("Call 911 now if you have")
    assert all(text.index(symptom, start) < text.index("What you were given today")
               for symptom in EMERGENCY_SYMPTOMS)


@pytest.mark.parametrize("name", ["clinic-standard", "consensus-2018", "schwartzman-2009"])
def test_no_protocol_tells_the_patient_to_call_the_clinic_for_an_emergency(name: str) -> None:
    from ketamine_clinic.clinical.protocol import load_protocol

    for note in load_protocol(name).discharge_instructions:
        text = note.text.lower()
        if any(s in text for s in ("chest pain", "trouble breathing", "stay awake")):
            assert "emergency number" in text, note.text
            assert "not the clinic" in text, note.text


def test_the_no_driving_time_keeps_24_elapsed_hours_across_the_daylight_saving_change(
        cast: Any, pv1: Any, client: Client) -> None:
    # Saturday 8 March 2025, 8:00 PM MST; clocks go forward at 2 AM on Sunday.
    session = make_session(cast, pv1, scheduled_for=at(15, 0, day=8))
    add_entry(session, "infusion_start", at(16, 0, day=8), rate(20), by=cast.bob)
    add_entry(session, "stop", at(20, 0, day=8), by=cast.bob)
    client.force_login(cast.bob)
    text = pdf_text(client, session)
    assert "Do not drive until Sunday, March 9, 2025 at 9:00 PM" in text
    until = session_summary(session).no_driving.until  # type: ignore[union-attr]
    assert until.astimezone(DENVER).utcoffset() == timedelta(hours=-6)


def test_an_infusion_that_has_not_ended_gets_no_pdf(cast: Any, pv1: Any,
                                                    client: Client) -> None:
    session = make_session(cast, pv1)
    add_entry(session, "infusion_start", at(9, 30), rate(20), by=cast.bob)
    client.force_login(cast.bob)
    assert client.get(reverse("session_instructions_pdf", args=[session.pk])).status_code == 409
    page = client.get(reverse("session_instructions", args=[session.pk]))
    assert page.status_code == 200
    assert b"has no stop entry" in page.content


def test_the_print_view_shows_the_same_sheet(cast: Any, finished_session: Any,
                                             client: Client) -> None:
    client.force_login(cast.bob)
    page = client.get(reverse("session_instructions", args=[finished_session.pk]))
    html = page.content.decode()
    assert "Do not drive until Tuesday, March 4, 2025 at 1:30 PM" in html
    assert "Ana Ruiz" in html


@pytest.mark.parametrize("view", ["session_instructions", "session_instructions_pdf"])
def test_reading_the_sheet_is_audited(cast: Any, finished_session: Any, client: Client,
                                      view: str) -> None:
    from ketamine_clinic.web.audit.models import AuditEntry

    client.force_login(cast.bob)
    client.get(reverse(view, args=[finished_session.pk]))
    entry = AuditEntry.objects.filter(action__startswith="discharge_instructions.").get()
    assert entry.object_id == str(finished_session.pk)


def test_the_series_position_counts_the_infusions_actually_given(
        cast: Any, finished_session: Any, client: Client) -> None:
    from ketamine_clinic.web.sessions.models import InfusionSession

    bob = cast.bob
    series = finished_session.series
    # Visit 2 (the next morning) was never started; visit 3 is given on day 5.
    missed = InfusionSession.objects.get(series=series, visit_number=2)
    assert session_summary(missed).infusion_number is None
    third = make_session(cast, finished_session.order.protocol_version, visit=3,
                         scheduled_for=at(9, 0, day=5), series=series)
    add_entry(third, "infusion_start", at(9, 30, day=5), rate(20), by=bob)
    add_entry(third, "stop", at(13, 30, day=5), {"reason": "planned end"}, by=bob)
    assert session_summary(finished_session).infusion_number == 1
    assert session_summary(third).infusion_number == 2  # its booking number is 3
    client.force_login(bob)
    text = pdf_text(client, third)
    assert "infusion 2 of your series (5 planned)" in text
    assert "infusion 3 of your series" not in text


def test_a_start_entered_in_error_is_not_counted_as_an_infusion_given(
        cast: Any, finished_session: Any) -> None:
    bob = cast.bob
    series = finished_session.series
    start = next(e for e in finished_session.entries.all() if e.kind == "infusion_start")
    add_entry(finished_session, "entered_in_error", at(14, 0), {}, by=bob, corrects=start,
              reason="charted on the wrong patient")
    later = make_session(cast, finished_session.order.protocol_version, visit=3,
                         scheduled_for=at(9, 0, day=6), series=series)
    add_entry(later, "infusion_start", at(9, 30, day=6), rate(20), by=bob)
    assert session_summary(later).infusion_number == 1


def test_the_sheet_writes_dates_in_the_clinics_locale(cast: Any, finished_session: Any,
                                                      client: Client, settings: Any) -> None:
    from ketamine_clinic.web.documents import dates

    client.force_login(cast.bob)
    text = pdf_text(client, finished_session)  # a US clinic (en-us)
    born = finished_session.patient.date_of_birth
    assert f"{born:%m/%d/%Y} (month/day/year)" in text
    assert "Monday, March 3, 2025, infusion 1 of your series" in text
    assert "3 March 2025" not in text
    settings.LANGUAGE_CODE = "en-gb"
    assert dates.patient_numeric_date(born) == f"{born:%d/%m/%Y} (day/month/year)"
    assert dates.patient_date(at(9)) == "Monday 3 March 2025"
