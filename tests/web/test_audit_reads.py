"""Every page and API read of a patient, an order, a session, a screening or a consent
records who read it, filed under the site the record belongs to.

The reads are recorded by the ``*_get_for`` selectors (the read's action is a required
argument), or, where the entry carries what the view works out, by the area's
``*_read_record``. This test walks every URL that takes one of those ids, so a new page or
endpoint that reads one without recording it fails here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Q
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from ketamine_clinic.web.audit.models import AuditEntry
from tests.web.sessions.conftest import build_clinic

# The ids a route may take, and the record each names.
SUBJECTS = ("patient_id", "order_id", "session_id", "screening_id", "consent_id")

# The action each object's own page and API read records (the rest of the routes are
# checked for an entry naming the record, whatever its action).
ACTIONS = {
    "patient_detail": "patient.view", "get_patient": "api.patient.view",
    "order_detail": "order.view", "get_order": "api.order.view",
    "session_detail": "session.view", "get_session": "api.session.view",
    "screening_detail": "screening.view", "get_screening": "api.screening.view",
    "consent_detail": "consent.view", "get_consent": "api.consent.view",
}

# Reads that record no entry today, each with what it shows. Adding a route here needs a
# reason as good as these; removing one (its read now recorded) is the way forward.
NOT_RECORDED: dict[str, str] = {}

# Query strings a read needs to show its record at all.
QUERIES = {"consent_new": "protocol_version"}


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def _subject_routes() -> list[tuple[str, str]]:
    """(name, route) of every URL taking one of SUBJECTS (one per route)."""
    seen: dict[str, str] = {}
    for route, p in _routes(get_resolver().url_patterns):
        if any(f"<{s}>" in route or f":{s}>" in route for s in SUBJECTS):
            seen.setdefault(route, p.name or route)
    return sorted((name, route) for route, name in seen.items())


@dataclass
class World:
    cast: Any
    ids: dict[str, int]


@pytest.fixture
def world(cast: Any) -> World:
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.sessions import services

    clinic = build_clinic(cast)
    written = services.session_event(actor=Actor(user=cast.bob), session=clinic.session,
                                     event="check_in", data={},
                                     occurred_at=timezone.now() - timedelta(seconds=30),
                                     idempotency_key=uuid.uuid4().hex)
    return World(cast, {
        "patient_id": cast.ana.pk, "order_id": clinic.order.pk, "session_id": clinic.session.pk,
        "screening_id": clinic.series.screening_id, "consent_id": clinic.consent.pk,
        "protocol_version_id": clinic.protocol_version.pk, "entry_id": written.entry.pk,
    })


def _url(route: str, ids: dict[str, int]) -> str | None:
    """The route with the world's ids filled in; None if it takes another parameter."""
    url = route
    while "<" in url:
        start, end = url.index("<"), url.index(">")
        name = url[start + 1:end].split(":")[-1]
        if name not in ids:
            return None
        url = url[:start] + str(ids[name]) + url[end + 1:]
    return "/" + url


# The parameters the world fills; a route that takes another one addresses a record no read
# shows on its own (an alarm, a measurement, an event): it must be a write (below).
FILLED = dict.fromkeys(("patient_id", "order_id", "session_id", "screening_id", "consent_id",
                        "protocol_version_id", "entry_id"), 1)


def _readable_routes() -> list[tuple[str, str]]:
    return [(name, route) for name, route in _subject_routes() if _url(route, FILLED)]


def _write_routes() -> list[str]:
    return [route for _, route in _subject_routes() if _url(route, FILLED) is None]


@pytest.mark.parametrize("route", _write_routes())
def test_a_route_no_read_fills_takes_no_get(cast: Any, client: Client, route: str) -> None:
    """The routes left out of the read walk below are writes only: a GET is refused before
    any record is looked at."""
    client.force_login(cast.alice)
    url = "/" + re.sub(r"<(?:\w+:)?(\w+)>",
                       lambda m: "1" if m.group(1).endswith("_id") else "x", route)
    response = client.get(url)
    assert response.status_code == 405, (route, response.status_code)


@pytest.mark.parametrize(("name", "route"), _readable_routes(), ids=lambda v: str(v))
def test_every_read_of_a_patients_record_is_audited(world: World, client: Client, name: str,
                                                     route: str) -> None:
    url = _url(route, world.ids)
    assert url is not None
    query = {q: world.ids["protocol_version_id"] for q in [QUERIES.get(name)] if q}
    c = world.cast
    for user in (c.alice, c.dave, c.erin, c.bob):  # the first role the page lets in
        client.force_login(user)
        before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        response = client.get(url, query)
        if response.status_code != 403:
            break
    if response.status_code != 200:
        # A write (405), a page no role reaches (403), a form that sends elsewhere (302),
        # the PDF of an infusion that has not ended (409): nothing of the record shown.
        assert response.status_code in (302, 403, 405, 409), (url, response.status_code)
        return
    about = Q(object_id__in=[str(world.ids[s]) for s in SUBJECTS if f"{s}>" in route]) | Q(
        detail__patient=c.ana.pk) | Q(object_type="patient", object_id=str(c.ana.pk))
    new = AuditEntry.objects.filter(pk__gt=before, username=user.get_username())
    entries = list(new.filter(about).values_list("action", "site_code"))
    if name in NOT_RECORDED:
        assert not entries, f"{name} is audited now: take it off NOT_RECORDED"
        return
    assert entries, f"GET {url} ({name}) showed Ana's record and recorded no audit entry"
    assert {site for _, site in entries} == {"denver"}, entries
    if name in ACTIONS:  # exactly once (the patient page's panels record their own)
        assert [a for a, _ in entries].count(ACTIONS[name]) == 1, entries
