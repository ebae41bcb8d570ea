"""Informed consent: the document, recording it (drawn signature or paper), the selector the
session start gate calls, and withdrawal."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.clinical.discharge import no_driving_until
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.documents import services
from ketamine_clinic.web.documents.consent import consent_for
from ketamine_clinic.web.documents.models import ConsentDocument
from ketamine_clinic.web.protocols.selectors import consent_current

from .factories import loaded

# A wavy line across most of a 600 × 200 pad: a plausible drawn signature.
SIGNATURE = json.dumps([[[40 + 8 * i, 100 + (20 if i % 2 else -20)] for i in range(60)],
                        [[300, 60], [310, 150]]])


def record(cast: Any, pv: Any, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "actor": Actor(user=cast.bob), "patient": cast.ana, "protocol_version": pv,
        "document_sha256": consent_for(pv).sha256, "method": "signature",
        "explained_by": cast.bob, "signed_at": timezone.now() - timedelta(minutes=2),
        "signature_strokes": SIGNATURE, "pad_width": 600, "pad_height": 200,
    }
    kwargs.update(overrides)
    return services.consent_record(**kwargs)


# --------------------------------------------------------------------------- the document


def test_the_document_hash_is_the_sha256_of_its_text_and_is_stable(pv1: Any) -> None:
    first, second = consent_for(pv1), consent_for(pv1)
    assert first.sha256 == hashlib.sha256(first.text.encode("utf-8")).hexdigest()
    assert first.text == second.text


def test_the_document_states_the_protocols_regimen(pv1: Any) -> None:
    protocol = loaded(pv1)
    dosing, series = protocol.dosing, protocol.series
    text = consent_for(pv1).text

    def n(q: Any) -> str:
        return f"{float(q.value):g}"

    assert f"Starting rate: {n(dosing.start_rate)} mg/h." in text
    assert f"never above {n(dosing.max_rate)} mg/h" in text
    assert f"in steps of {n(dosing.titration_step)} mg/h" in text
    assert dosing.planned_duration_min.value == 240
    assert "Each infusion lasts about 4 hours." in text
    assert series.spacing_days.value == 1
    assert f"planned in this series: {n(series.sessions)}, on consecutive days." in text
    premed = protocol.premedications[0]
    assert f"{premed.drug} {n(premed.dose)} {premed.dose.unit} {premed.route}" in text
    assert f"(version {pv1.version})." in text
    assert pv1.sha256 not in text  # kept in the record, not in the text the patient reads


def test_the_document_names_common_dream_like_effects_and_the_no_driving_hours(
        pv1: Any) -> None:
    text = consent_for(pv1).text
    assert "Dream-like or unusual feelings" in text
    assert "common" in text
    hours = no_driving_until(timezone.now()).hours
    assert f"for {hours} hours after the infusion ends" in text
    assert "[S10]" in text
    assert "[S26-Mayo]" in text


def test_another_protocol_version_has_another_document(pv1: Any, pv2: Any) -> None:
    assert consent_for(pv1).sha256 != consent_for(pv2).sha256


# --------------------------------------------------------------------------- the selector


def test_there_is_no_current_consent_before_one_is_recorded(cast: Any, pv1: Any) -> None:
    assert consent_current(cast.ana, pv1) is None


def test_the_recorded_consent_is_current_for_its_protocol_version(cast: Any, pv1: Any) -> None:
    consent = record(cast, pv1)
    assert consent_current(cast.ana, pv1) == consent
    assert consent_current(cast.ana.pk, pv1.pk) == consent


def test_a_consent_for_another_protocol_version_does_not_count(cast: Any, pv1: Any,
                                                              pv2: Any) -> None:
    record(cast, pv1)
    assert consent_current(cast.ana, pv2) is None


def test_a_consent_of_another_patient_does_not_count(cast: Any, pv1: Any) -> None:
    record(cast, pv1)
    assert consent_current(cast.zed, pv1) is None


def test_a_withdrawn_consent_no_longer_counts(cast: Any, pv1: Any) -> None:
    consent = record(cast, pv1)
    services.consent_withdraw(actor=Actor(user=cast.bob), consent=consent,
                              reason="patient changed her mind")
    assert consent_current(cast.ana, pv1) is None
    consent.refresh_from_db()
    assert consent.withdrawal.reason == "patient changed her mind"  # kept, not deleted


def test_withdrawing_the_newest_consent_is_not_undone_by_an_older_one(cast: Any, pv1: Any,
                                                                     monkeypatch: Any) -> None:
    older = record(cast, pv1, signed_at=timezone.now() - timedelta(days=2))
    # The consent text changed (a new content file): the patient signs the new text.
    monkeypatch.setattr("ketamine_clinic.web.documents.consent._template",
                        lambda: ({"title": "Consent, second wording", "section": []}, "x"))
    newer = record(cast, pv1, document_sha256=consent_for(pv1).sha256)
    assert consent_current(cast.ana, pv1) == newer
    services.consent_withdraw(actor=Actor(user=cast.bob), consent=newer, reason="declined")
    assert consent_current(cast.ana, pv1) is None
    assert older.pk != newer.pk


def test_a_consent_on_an_earlier_wording_stays_valid_and_says_so(
        cast: Any, pv1: Any, monkeypatch: Any, client: Any) -> None:
    consent = record(cast, pv1)
    client.force_login(cast.bob)
    url = reverse("consent_detail", args=[consent.pk])
    assert b"wording-changed" not in client.get(url).content
    monkeypatch.setattr("ketamine_clinic.web.documents.consent._template",
                        lambda: ({"title": "Consent, second wording", "section": []}, "x"))
    assert consent_current(cast.ana, pv1) == consent
    assert b"wording-changed" in client.get(url).content


def test_a_replaced_consent_cannot_be_withdrawn_and_shows_as_replaced(
        cast: Any, pv1: Any, monkeypatch: Any, client: Any) -> None:
    older = record(cast, pv1, signed_at=timezone.now() - timedelta(days=2))
    monkeypatch.setattr("ketamine_clinic.web.documents.consent._template",
                        lambda: ({"title": "Consent, second wording", "section": []}, "x"))
    record(cast, pv1, document_sha256=consent_for(pv1).sha256)
    with pytest.raises(UsageError) as caught:
        services.consent_withdraw(actor=Actor(user=cast.bob), consent=older, reason="x")
    assert "newer consent" in caught.value.problem
    client.force_login(cast.bob)
    panel = client.get(reverse("patient_detail", args=[cast.ana.pk])).content.decode()
    assert panel.count("in force") == 1
    assert "replaced" in panel


def test_after_withdrawal_a_new_consent_is_current_again(cast: Any, pv1: Any) -> None:
    first = record(cast, pv1)
    services.consent_withdraw(actor=Actor(user=cast.bob), consent=first, reason="wants time")
    second = record(cast, pv1, method="paper", signature_strokes="", paper_attested=True,
                    paper_reference="scan 1234")
    assert consent_current(cast.ana, pv1) == second


# --------------------------------------------------------------------------- recording


def test_a_drawn_signature_is_stored_as_svg_built_from_the_points(cast: Any, pv1: Any) -> None:
    consent = record(cast, pv1)
    assert consent.method == "signature"
    assert consent.signature_svg.startswith("<svg")
    assert consent.signature_svg.count("<path") == 2
    assert 'd="M40 80 L48 120' in consent.signature_svg


def test_the_signed_text_is_stored_under_its_hash(cast: Any, pv1: Any) -> None:
    consent = record(cast, pv1)
    document = ConsentDocument.objects.get(sha256=consent.document_sha256)
    assert hashlib.sha256(document.text.encode()).hexdigest() == consent.document_sha256
    assert document.protocol_version == pv1


def test_recording_is_audited(cast: Any, pv1: Any) -> None:
    consent = record(cast, pv1)
    entry = AuditEntry.objects.get(action="consent.record")
    assert entry.object_id == str(consent.pk)
    assert entry.site_code == "denver"


@pytest.mark.parametrize(("strokes", "problem"), [
    ("", "empty"),
    ("[]", "empty"),
    ("[[[10, 10], [11, 11]]]", "too short"),
    (json.dumps([[[10 + i * 0.1, 10] for i in range(30)]]), "too small"),
    ('[[["<script>", 1]]]', "not readable"),
    ('[[[1e999, 1]]]', "not readable"),
])
def test_it_refuses_a_signature_that_is_not_one(cast: Any, pv1: Any, strokes: str,
                                                problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        record(cast, pv1, signature_strokes=strokes)
    assert caught.value.field == "signature"
    assert problem in caught.value.problem
    assert consent_current(cast.ana, pv1) is None


def test_a_paper_consent_needs_the_attestation(cast: Any, pv1: Any) -> None:
    with pytest.raises(UsageError) as caught:
        record(cast, pv1, method="paper", signature_strokes="")
    assert caught.value.field == "paper_attested"
    consent = record(cast, pv1, method="paper", signature_strokes="", paper_attested=True,
                     paper_reference="chart tab 3")
    assert consent.signature_svg == ""
    assert consent.paper_reference == "chart tab 3"


def test_it_refuses_a_text_the_patient_did_not_see(cast: Any, pv1: Any) -> None:
    with pytest.raises(UsageError) as caught:
        record(cast, pv1, document_sha256="0" * 64)
    assert caught.value.field == "document_sha256"


@pytest.mark.parametrize("who", ["carol", "oscar"])
def test_the_explainer_is_a_clinician_of_the_patients_site(cast: Any, pv1: Any,
                                                           who: str) -> None:
    with pytest.raises(UsageError) as caught:
        record(cast, pv1, explained_by=getattr(cast, who))
    assert caught.value.field == "explained_by"


def test_it_refuses_a_signing_time_in_the_future(cast: Any, pv1: Any) -> None:
    with pytest.raises(UsageError) as caught:
        record(cast, pv1, signed_at=timezone.now() + timedelta(hours=1))
    assert caught.value.field == "signed_at"


def test_it_refuses_a_second_consent_on_the_same_text_while_one_is_in_force(
        cast: Any, pv1: Any) -> None:
    record(cast, pv1)
    with pytest.raises(UsageError) as caught:
        record(cast, pv1)
    assert caught.value.field == "protocol_version"


def test_a_withdrawal_needs_a_reason_and_happens_once(cast: Any, pv1: Any) -> None:
    consent = record(cast, pv1)
    with pytest.raises(UsageError):
        services.consent_withdraw(actor=Actor(user=cast.bob), consent=consent, reason=" ")
    services.consent_withdraw(actor=Actor(user=cast.bob), consent=consent, reason="declined")
    with pytest.raises(UsageError):
        services.consent_withdraw(actor=Actor(user=cast.bob), consent=consent, reason="again")


# --------------------------------------------------------------------------- pages


def test_the_consent_page_records_a_drawn_signature(cast: Any, pv1: Any, client: Any) -> None:
    client.force_login(cast.bob)
    url = reverse("consent_new", args=[cast.ana.pk])
    page = client.get(url, {"protocol_version": pv1.pk})
    assert page.status_code == 200
    assert b"Starting rate: " in page.content
    assert consent_for(pv1).sha256.encode() in page.content  # "for the clinic's record"
    response = client.post(url, {
        "protocol_version": pv1.pk, "document_sha256": consent_for(pv1).sha256,
        "method": "signature", "explained_by": cast.bob.pk,
        "signed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "signature_strokes": SIGNATURE, "pad_width": 600, "pad_height": 200})
    assert response.status_code == 302, response.content[:2000]
    consent = consent_current(cast.ana, pv1)
    assert consent is not None
    assert consent.explained_by == cast.bob
    detail = client.get(response["Location"])
    assert b"<svg" in detail.content
    assert b"in force" in detail.content


def test_the_consent_page_shows_the_problem_when_the_patient_did_not_sign(
        cast: Any, pv1: Any, client: Any) -> None:
    client.force_login(cast.bob)
    response = client.post(reverse("consent_new", args=[cast.ana.pk]), {
        "protocol_version": pv1.pk, "document_sha256": consent_for(pv1).sha256,
        "method": "signature", "explained_by": cast.bob.pk,
        "signed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "signature_strokes": "", "pad_width": 600, "pad_height": 200})
    assert response.status_code == 400
    assert b"not readable" in response.content or b"empty" in response.content
    assert consent_current(cast.ana, pv1) is None


def test_the_patient_page_shows_the_consent_panel(cast: Any, pv1: Any, client: Any) -> None:
    record(cast, pv1)
    client.force_login(cast.carol)
    page = client.get(reverse("patient_detail", args=[cast.ana.pk])).content.decode()
    assert "Informed consent" in page
    assert "test-clinic v1" in page
    assert "in force" in page
    assert "Record consent" not in page  # front desk may not record consent


def test_the_withdrawal_page_marks_the_consent_withdrawn(cast: Any, pv1: Any,
                                                         client: Any) -> None:
    consent = record(cast, pv1)
    client.force_login(cast.alice)
    response = client.post(reverse("consent_withdraw", args=[consent.pk]),
                           {"reason": "patient declined further infusions"})
    assert response.status_code == 302
    assert consent_current(cast.ana, pv1) is None
    assert b"withdrawn" in client.get(reverse("consent_detail", args=[consent.pk])).content


# --------------------------------------------------------------------------- issue 12


COVERED = {
    "off-label use": "off-label use",
    "the dissociation target": "until you notice some dream-like or detached feelings",
    "misuse with repeated use": "Misuse and dependence",
    "bladder risks with repeated use": "the risk may grow with repeated treatment",
    "premedication side effects": "Possible side effects of glycopyrrolate: dry mouth",
    "allergies": "If you are allergic to ketamine you cannot have this treatment",
    "no driving for 24 h": "for 24 hours after the infusion ends",
    "the alternatives": "physical and occupational therapy",
}


@pytest.mark.parametrize("topic", sorted(COVERED))
def test_the_consent_covers_what_the_review_asked_for(topic: str, pv1: Any) -> None:
    assert COVERED[topic] in consent_for(pv1).text


def test_the_aim_comes_from_the_protocols_data_one_truth_per_protocol(cast: Any) -> None:
    from ketamine_clinic.web.protocols.models import ProtocolVersion

    standard = ProtocolVersion.objects.get(name="clinic-standard", version=2)
    consensus = ProtocolVersion.objects.get(name="consensus-2018", version=2)
    assert loaded(standard).titration_target is not None
    assert loaded(consensus).titration_target is None
    assert "until you notice some dream-like" in consent_for(standard).text
    assert "The aim is pain relief, not a dream-like state" in consent_for(consensus).text
    assert "The aim is pain relief" not in consent_for(standard).text


def test_the_consent_a_patient_reads_has_no_source_tags_or_checksums(
        cast: Any, pv1: Any, client: Any) -> None:
    import re

    client.force_login(cast.bob)
    generated = consent_for(pv1)
    assert "[S26]" in generated.text  # the stored record keeps the sources
    page = client.get(reverse("consent_new", args=[cast.ana.pk]),
                      {"protocol_version": pv1.pk}).content.decode()
    document = page[page.index('class="consent-doc"'):page.index('id="record-details"')]
    assert not re.search(r"\[(S\d+|clinic-page|clinic-policy)", document)
    assert pv1.sha256 not in document
    printed = client.get(reverse("consent_print", args=[cast.ana.pk, pv1.pk])).content.decode()
    assert not re.search(r"\[(S\d+|clinic-page|clinic-policy)", printed)
    assert generated.sha256 not in printed
    assert pv1.sha256 not in printed


def test_the_printed_consent_writes_dates_in_the_clinics_locale(cast: Any, pv1: Any,
                                                                client: Any) -> None:
    client.force_login(cast.bob)
    printed = client.get(reverse("consent_print", args=[cast.ana.pk, pv1.pk])).content.decode()
    born = cast.ana.date_of_birth
    assert f"date of birth {born:%m/%d/%Y} (month/day/year)" in printed
    assert "Date (month/day/year) and time" in printed
