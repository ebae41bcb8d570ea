"""Protocol versions: stored on migrate, read, compared and published (append-only)."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any

import pytest
from django.urls import reverse

from ketamine_clinic.clinical.protocol import load_protocol_text, references, source_keys
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.protocols import services
from ketamine_clinic.web.protocols.models import ProtocolVersion

from .conftest import renamed_text


def shipped_files() -> dict[str, str]:
    folder = resources.files("ketamine_clinic.protocols")
    return {f.name: f.read_text("utf-8") for f in folder.iterdir() if f.name.endswith(".toml")}


def test_every_shipped_protocol_file_is_in_the_database_after_migrate(db: Any) -> None:
    for filename, text in shipped_files().items():
        name = re.search(r'(?m)^name = "([^"]+)"$', text)[1]  # type: ignore[index]
        version = int(re.search(r"(?m)^version = (\d+)$", text)[1])  # type: ignore[index]
        pv = ProtocolVersion.objects.get(name=name, version=version)
        assert pv.sha256 == hashlib.sha256(text.encode()).hexdigest(), filename
        assert pv.published_by is None
        assert pv.toml_text == text


def test_syncing_again_stores_nothing_twice(db: Any) -> None:
    before = ProtocolVersion.objects.count()
    assert services.protocol_sync_shipped() == []
    assert ProtocolVersion.objects.count() == before


def test_a_shipped_file_that_differs_from_its_stored_version_is_refused_not_stored(
        db: Any) -> None:
    pv = ProtocolVersion.objects.get(name="clinic-standard", version=2)
    ProtocolVersion.objects.filter(pk=pv.pk).update(sha256="0" * 64)  # as if edited
    with pytest.raises(Exception, match="new version number"):
        services.protocol_sync_shipped()
    assert services.protocol_sync_shipped(on_conflict="skip") == []


def test_what_the_fact_sheet_leaves_unconfirmed_is_on_the_protocol_page_not_the_bedside(
        client: Any, cast: Any, standard: Any) -> None:
    from ketamine_clinic.clinical.scales import get_scale
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.sessions import services as sessions
    from tests.web.sessions.conftest import make_order

    cadss = get_scale("cadss6")
    assert cadss.unconfirmed
    client.force_login(cast.bob)
    html = client.get(reverse("protocol_detail", args=["clinic-standard", 2])).content.decode()
    for note in cadss.unconfirmed:
        assert note in html
    order = make_order(cast, cast.ana, standard)
    session = sessions.session_schedule(actor=Actor(user=cast.bob), order=order,
                                        scheduled_for=order.signed_at, chair="1")
    bedside = client.get(reverse("session_detail", args=[session.pk])).content.decode()
    assert "CADSS" in bedside
    assert not any(note in bedside for note in cadss.unconfirmed)
    assert "UNCONFIRMED" not in bedside


def test_the_protocol_page_shows_every_number_with_its_source(client: Any, cast: Any,
                                                              standard: Any) -> None:
    client.force_login(cast.bob)
    html = client.get(reverse("protocol_detail", args=["clinic-standard", 2])).content.decode()
    protocol = load_protocol_text(standard.toml_text, "test")
    numbers = [r for r in protocol.rows if isinstance(r.value, int | float)
               and not isinstance(r.value, bool) and r.path not in ("format", "version")]
    assert len(numbers) > 40
    for row in numbers:
        shown = f"{row.value:g}" if isinstance(row.value, float) else str(row.value)
        assert f">{shown}" in html or f"{shown} <span" in html, row.path
        for key in source_keys(row.source):
            assert f'href="{reverse("protocol_references")}#{key}"' in html, (row.path, key)
    # A clinic-policy source is shown as written, naming who set it.
    assert "clinic policy (set by the engineering team" in html
    assert "Glycopyrrolate 0.2 mg IV first" in html


def test_every_source_key_links_to_a_citation_on_the_references_page(client: Any,
                                                                    cast: Any) -> None:
    client.force_login(cast.carol)
    html = client.get(reverse("protocol_references")).content.decode()
    for key, _ref in references().items():
        assert f'id="{key}"' in html
    assert "Schwartzman RJ" in html
    assert "clinic-standard v2" in html  # cited-by column


def publish(user: Any, text: str, note: str = "raise the validity period") -> Any:
    return services.protocol_publish(actor=Actor(user=user), toml_text=text, change_note=note)


def test_publishing_stores_a_new_version_with_who_when_and_why_and_audits_it(
        cast: Any, standard: Any) -> None:
    text = renamed_text(standard, version=3, replace={
        r"^validity_days = \{ value = 30,": "validity_days = { value = 60,"})
    pv = publish(cast.dave, text.replace("\n", "\r\n"))
    assert (pv.name, pv.version, pv.published_by) == ("clinic-standard", 3, cast.dave)
    assert pv.toml_text == text  # line ends normalised: same hash as the file would have
    assert pv.sha256 == hashlib.sha256(text.encode()).hexdigest()
    entry = AuditEntry.objects.get(action="protocol.publish")
    assert entry.detail["version"] == 3
    assert entry.detail["change_note"]
    standard.refresh_from_db()
    assert standard.toml_text.count("value = 30,") >= 1  # the old version is untouched
    with pytest.raises(RuntimeError):
        pv.save()


def test_a_version_number_that_is_not_new_is_refused_naming_the_version(
        cast: Any, standard: Any) -> None:
    for version in (1, 2):  # 2 is the shipped v2
        with pytest.raises(Exception, match="a new version must be numbered 3") as exc:
            publish(cast.dave, renamed_text(standard, version=version))
        assert exc.value.field == "upload:version"  # type: ignore[attr-defined]
    assert ProtocolVersion.objects.filter(name="clinic-standard").count() == 2


def test_only_an_administrator_may_publish(cast: Any, standard: Any) -> None:
    with pytest.raises(Exception, match="clinic administrator"):
        publish(cast.alice, renamed_text(standard, version=3))


@pytest.mark.parametrize(("pattern", "replacement", "named"), [
    (r'^start_rate = \{ value = 60, unit = "mg/h", source = "clinic-page",',
     'start_rate = { value = 60, unit = "mg/h",', "dosing.start_rate"),
    (r'^start_rate = \{ value = 60,', "start_rate = { value = 500,", "dosing.start_rate"),
    (r'^vitals_interval_min = \{ value = 15, unit = "min", source = "S12',
     'vitals_interval_min = { value = 15, unit = "min", source = "S999', "monitoring"),
    (r'^severity = "exclude"$', 'severity = "forbidden"', "screening.rule"),
    (r"^format = 1$", "format = [", "not valid TOML"),
])
def test_publishing_errors_name_the_key_and_the_problem_on_the_form(
        client: Any, cast: Any, standard: Any, pattern: str, replacement: str,
        named: str) -> None:
    client.force_login(cast.dave)
    text = renamed_text(standard, version=3, replace={pattern: replacement})
    response = client.post(reverse("protocol_publish"),
                           {"toml_text": text, "change_note": "try", "publish": "1"})
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["toml_text"])
    assert named in errors
    assert not ProtocolVersion.objects.filter(name="clinic-standard", version=3).exists()


def test_checking_shows_the_changes_before_anything_is_stored(client: Any, cast: Any,
                                                               standard: Any) -> None:
    client.force_login(cast.dave)
    text = renamed_text(standard, version=3, replace={
        r"^max_rate = \{ value = 100,": "max_rate = { value = 90,"})
    response = client.post(reverse("protocol_publish"),
                           {"toml_text": text, "change_note": "lower cap", "check": "1"})
    assert response.status_code == 200
    changed = {line.path: line for line in response.context["lines"]}
    assert changed["dosing.max_rate"].old.value == "100"
    assert changed["dosing.max_rate"].new.value == "90"
    assert not ProtocolVersion.objects.filter(version=3).exists()


def test_an_uploaded_file_is_published_and_the_page_redirects_to_it(client: Any, cast: Any,
                                                                    standard: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(cast.dave)
    text = renamed_text(standard, version=4)
    upload = SimpleUploadedFile("clinic-standard.v4.toml", text.encode(), "text/plain")
    response = client.post(reverse("protocol_publish"),
                           {"upload": upload, "change_note": "same rules", "publish": "1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("protocol_detail", args=["clinic-standard", 4])


def test_old_versions_stay_readable_and_the_comparison_shows_what_changed(
        client: Any, cast: Any, standard: Any) -> None:
    v2 = publish(cast.dave, renamed_text(standard, version=3, replace={
        r"^max_rate = \{ value = 100,": "max_rate = { value = 90,"}))
    client.force_login(cast.erin)
    old_page = client.get(reverse("protocol_detail", args=["clinic-standard", 2]))
    assert old_page.status_code == 200
    assert b"This is not the newest version" in old_page.content
    response = client.get(reverse("protocol_compare") + f"?old={standard.pk}&new={v2.pk}")
    lines = {line.path: line for line in response.context["lines"]}
    assert set(lines) == {"version", "dosing.max_rate"}
    assert (lines["dosing.max_rate"].old.value, lines["dosing.max_rate"].new.value) == (
        "100", "90")
    listing = client.get(reverse("protocol_list")).content.decode()
    assert f"?old={standard.pk}&amp;new={v2.pk}" in listing


def test_the_toml_text_of_a_version_is_served_as_stored(client: Any, cast: Any,
                                                        standard: Any) -> None:
    client.force_login(cast.carol)
    response = client.get(reverse("protocol_toml", args=["clinic-standard", 2]))
    assert response.content.decode() == standard.toml_text


def test_the_list_and_a_patients_screenings_take_a_fixed_number_of_queries(
        client: Any, cast: Any, ana_ready: Any, standard: Any,
        django_assert_max_num_queries: Any) -> None:
    for version in (3, 4, 5):
        publish(cast.dave, renamed_text(standard, version=version))
    for _ in range(3):
        services.screening_record(actor=Actor(user=cast.bob), patient=ana_ready,
                                  protocol_version=standard, answers={})
    client.force_login(cast.erin)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("protocol_list")).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(reverse("screening_list", args=[ana_ready.pk])).status_code == 200
