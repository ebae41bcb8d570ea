"""Patient education pages: public, printable, every statement traceable to a source, and
free of the clinic's old page's errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.clinical.discharge import no_driving_until
from ketamine_clinic.web.documents import education
from ketamine_clinic.web.documents.markup import SPECIAL_KEYS, cited_keys, render_inline

PAGES = education.pages()
SLUGS = [p.slug for p in PAGES]
TOPICS = {"what-is-ketamine", "how-an-infusion-goes", "how-it-may-help", "risks",
          "after-your-infusion"}


def all_text(slugs: set[str] | None = None) -> str:
    return " ".join(t for p in PAGES if slugs is None or p.slug in slugs for t in p.texts())


def test_the_five_topics_and_the_corrections_page_exist() -> None:
    assert set(SLUGS) >= TOPICS
    assert "corrections" in SLUGS


@pytest.mark.parametrize("slug", SLUGS)
def test_every_paragraph_and_bullet_names_its_source(slug: str) -> None:
    page = education.page(slug)
    assert page is not None
    statements = [page.lead] + [t for s in page.sections for t in (*s.paragraphs, *s.bullets)]
    for statement in statements:
        assert cited_keys(statement), f"{slug}: no source for {statement!r}"


def test_every_cited_key_is_a_known_source() -> None:
    assert education.unknown_keys() == {}
    cited = {k for p in PAGES for k in p.cited()} - set(SPECIAL_KEYS)
    assert cited <= set(education.sources())


def test_the_sources_are_those_of_the_fact_sheets_section_8() -> None:
    sources = education.sources()
    assert sources["S8"].citation.startswith("Patil S, Anitescu M.")
    assert "Sigtermans" in sources["S10"].citation
    assert sources["S26-CHEO"].urls == ("https://outreach.cheo.on.ca/manual/1619",)


def test_dream_like_effects_are_described_as_common_not_rare() -> None:
    risks = all_text({"risks"})
    assert "common even at low doses" in risks
    assert "three in four" in risks
    assert not re.search(r"hallucinations (are|is) rare", all_text(TOPICS), re.I)


def test_the_2012_study_is_reported_with_369_infusions_and_lasting_relief() -> None:
    helps = all_text({"how-it-may-help"})
    assert "369 infusions" in helps
    assert "59% and 85%" in helps
    assert "chance of lasting relief" in helps
    assert "360" not in all_text(TOPICS)


def test_the_unconfirmed_13_patient_claim_is_never_shown() -> None:
    text = all_text()
    assert not re.search(r"\b13 (patients|people)\b", text)
    assert "85% success" not in text


def test_the_injection_timing_is_not_given_as_the_infusions() -> None:
    page = all_text({"what-is-ketamine"})
    assert "single anesthetic-strength injection" in page
    assert "[S26-CHEO]" in page


def test_the_exclusion_of_older_adults_is_labelled_clinic_policy() -> None:
    risks = education.page("risks")
    assert risks is not None
    older = next(s for s in risks.sections if s.heading == "Older adults")
    assert "[clinic-policy]" in older.paragraphs[0]
    assert "least frequent in people over 65" in older.paragraphs[0]


def test_the_no_driving_hours_come_from_the_reference_data() -> None:
    hours = no_driving_until(datetime(2025, 1, 1, tzinfo=UTC)).hours
    after = all_text({"after-your-infusion"})
    assert f"for {hours} hours after the drip ends" in after
    assert "{" not in all_text()


def test_a_source_key_renders_as_a_link_to_its_entry() -> None:
    html = render_inline("Common <b>effects</b>. [S10][clinic-policy]", "/education/sources/")
    assert '<a class="cite" href="/education/sources/#S10">[S10]</a>' in html
    assert 'href="/education/sources/#clinic-policy"' in html
    assert "&lt;b&gt;" in html  # content is escaped, never trusted as HTML


@pytest.mark.parametrize("url", [
    "/education/", "/education/sources/", "/education/print/",
    *[f"/education/{slug}/" for slug in SLUGS],
])
@pytest.mark.django_db  # the infusion page lists each stored protocol's aim
def test_the_pages_are_open_without_logging_in(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert b"Log out" not in response.content


def test_an_unknown_page_is_not_found(client: Client) -> None:
    assert client.get("/education/no-such-topic/").status_code == 404


def test_the_sources_page_has_an_anchor_for_every_cited_key(client: Client) -> None:
    html = client.get(reverse("education_sources")).content.decode()
    for key in {k for p in PAGES for k in p.cited()}:
        assert f'id="{key}"' in html


def test_a_page_links_its_citations_and_can_be_printed(client: Client) -> None:
    html = client.get(reverse("education_page", args=["risks"])).content.decode()
    assert 'href="/education/sources/#S10"' in html
    assert "data-print" in html  # static/js/app.js prints (no inline handler)
    assert "@media print" in html


@pytest.mark.django_db
def test_the_print_view_holds_every_page(client: Client) -> None:
    html = client.get(reverse("education_print")).content.decode()
    for page in PAGES:
        assert f'id="{page.slug}"' in html


def test_staff_see_the_education_link_in_the_top_bar(cast: Any, client: Client) -> None:
    client.force_login(cast.carol)
    assert b'href="/education/"' in client.get(reverse("home")).content


# --------------------------------------------------------------------------- issue 12


def test_the_pages_no_longer_say_the_aim_is_never_to_dissociate() -> None:
    assert "make you dissociate" not in all_text()


@pytest.mark.django_db
def test_the_infusion_page_states_each_protocols_aim_from_its_data(client: Client) -> None:
    from ketamine_clinic.web.documents.consent import aim_line, consent_for
    from ketamine_clinic.web.documents.protocol_facts import protocol_facts
    from ketamine_clinic.web.protocols.services import protocol_current

    page = client.get(reverse("education_page", args=["how-an-infusion-goes"]))
    html = page.content.decode()
    aims = html[html.index('id="protocol-aims"'):]
    for name in ("clinic-standard", "consensus-2018", "schwartzman-2009"):
        pv = protocol_current(name)
        aim = aim_line(protocol_facts(pv))
        assert pv.title in aims
        first_sentence = aim.split(". ")[0]
        assert first_sentence in aims
        assert first_sentence in consent_for(pv).text  # the consent says the same
    standard = aims[aims.index(protocol_current("clinic-standard").title):]
    assert standard.split("</li>")[0].count("dream-like or detached feelings") == 1


def test_emergency_symptoms_on_the_after_care_page_go_to_the_emergency_number() -> None:
    page = education.page("after-your-infusion")
    assert page is not None
    emergency = next(s for s in page.sections if "911" in s.heading)
    clinic = next(s for s in page.sections if s.heading == "Call us if")
    for symptom in ("chest pain", "trouble breathing", "cannot stay awake"):
        assert any(symptom in b.lower() for b in emergency.bullets)
        assert not any(symptom in b.lower() for b in clinic.bullets)
