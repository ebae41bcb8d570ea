"""The bedside and the ketamine record close a session together: the stop books the charted
dose, the discharge gate holds a session whose ketamine is not accounted for (no physician
may override it), a discrepancy on record lets the patient go, and a site that keeps no
record here is not held."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from ketamine_clinic.errors import Refusal, UsageError
from ketamine_clinic.web.sessions import services as sessions
from ketamine_clinic.web.stock import services
from ketamine_clinic.web.stock.models import Discrepancy, LedgerEntry, Registration
from tests.web.sessions.test_discharge_web import discharge, ready_to_go, recovering
from tests.web.stock.conftest import Stock, Walk, open_day


def drawn_and_recovering(stock: Stock, walk: Walk) -> None:
    open_day(stock)
    services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s,
                        container=stock.vials[0])
    recovering(walk)


def given_mg(walk: Walk) -> Decimal:
    return services.session_stock(walk.s).charted.given_mg


def test_the_stop_books_the_charted_dose_as_administered(stock: Stock, walk: Walk) -> None:
    open_day(stock)
    services.stock_draw(actor=stock.actor(stock.cast.bob), session=walk.s,
                        container=stock.vials[0])
    walk.infusing()
    assert not LedgerEntry.objects.filter(session=walk.s, kind="administer").exists()
    walk.event("stop", 150, reason="planned end")
    booked = LedgerEntry.objects.get(session=walk.s, kind="administer")
    assert booked.quantity_mg == Decimal(str(round(float(given_mg(walk)), 3)))
    assert booked.quantity_mg > 0


def test_discharge_waits_for_the_ketamine_to_be_accounted_for(stock: Stock, walk: Walk,
                                                              client: Client) -> None:
    drawn_and_recovering(stock, walk)
    client.force_login(walk.c.cast.bob)
    ready_to_go(client, walk)
    refused = discharge(client, walk)
    assert refused.status_code == 400
    page = html.unescape(refused.content.decode())
    assert "Ketamine record:" in page
    assert "not yet accounted for" in page
    assert walk.state() == "recovering"
    left = services.session_stock(walk.s).reconciliation.expected_waste_mg
    services.stock_waste(actor=stock.actor(stock.cast.bob), session=walk.s,
                         witness=stock.nina, quantity_mg=f"{float(left):.3f}")
    assert discharge(client, walk).status_code == 302
    assert walk.state() == "discharged"
    assert services.session_stock(walk.s).can_close


def test_no_physician_overrides_the_ketamine_record(stock: Stock, walk: Walk,
                                                    client: Client) -> None:
    drawn_and_recovering(stock, walk)
    client.force_login(walk.c.cast.bob)
    ready_to_go(client, walk)
    with pytest.raises(UsageError, match="cannot be overridden"):
        sessions.session_discharge(
            actor=walk.c.actor(walk.c.cast.alice), session=walk.s, escort_name="Luis Ruiz",
            instructions_given=True,
            overrides={"controlled_substance": "the vial was broken, I saw it"})
    assert walk.state() == "recovering"


def test_a_discrepancy_on_record_lets_the_patient_go(stock: Stock, walk: Walk,
                                                     client: Client) -> None:
    drawn_and_recovering(stock, walk)
    client.force_login(walk.c.cast.bob)
    ready_to_go(client, walk)
    services.stock_waste(actor=stock.actor(stock.cast.bob), session=walk.s,
                         witness=stock.nina, quantity_mg="100")
    with pytest.raises(Refusal, match="Ketamine record"):
        sessions.session_discharge(actor=walk.nurse, session=walk.s, escort_name="Luis Ruiz",
                                   instructions_given=True)
    services.stock_session_reconcile(actor=stock.actor(stock.cast.bob), session=walk.s,
                                     close=True)
    assert Discrepancy.objects.get(session=walk.s).state == "open"
    assert discharge(client, walk).status_code == 302
    assert walk.state() == "discharged"
    # The ledger's session stays open for the stock room until the discrepancy is resolved.
    assert not services.session_stock(walk.s).can_close


def test_a_site_that_keeps_no_record_here_is_not_held(stock: Stock, walk: Walk,
                                                      client: Client) -> None:
    Registration.objects.filter(site=walk.s.site).delete()
    recovering(walk)
    client.force_login(walk.c.cast.bob)
    ready_to_go(client, walk)
    page = client.get(reverse("session_detail", args=[walk.s.pk])).content.decode()
    assert reverse("stock_session", args=[walk.s.pk]) not in page
    assert discharge(client, walk).status_code == 302
    assert not LedgerEntry.objects.filter(session=walk.s).exists()


def test_the_session_page_links_to_its_ketamine_record(stock: Stock, walk: Walk,
                                                       client: Client) -> None:
    client.force_login(walk.c.cast.bob)
    page = client.get(reverse("session_detail", args=[walk.s.pk])).content.decode()
    assert reverse("stock_session", args=[walk.s.pk]) in page
