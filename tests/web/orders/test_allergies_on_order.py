"""Issue 11 finding 4: the order page shows the patient's allergies, and says which of the
order's drugs (ketamine, premedication, rescue) a recorded allergy forbids."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.patients import services as patients

from .conftest import World


def test_the_order_page_lists_the_allergies_and_flags_a_rescue_drug(world: World,
                                                                   client: Client) -> None:
    order = world.write()
    patients.allergy_record(actor=world.actor(world.cast.bob), patient=world.cast.ana,
                            substance="benzodiazepines", reaction="angioedema",
                            severity="severe")
    patients.allergy_record(actor=world.actor(world.cast.bob), patient=world.cast.ana,
                            substance="latex", reaction="rash", severity="mild")
    client.force_login(world.cast.bob)
    page = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    section = page[page.index('id="allergies"'):page.index('id="doses"')]
    assert "latex" in section
    assert "angioedema" in section
    assert ("Allergy recorded to benzodiazepines (reaction: angioedema): midazolam is one of "
            "the benzodiazepine drugs.") in section
    assert "It is the rescue drug of this order" in section
    assert "check by hand: latex" in section


def test_an_order_page_without_allergies_says_so(world: World, client: Client) -> None:
    order = world.write()
    client.force_login(world.cast.bob)
    page = client.get(reverse("order_detail", args=[order.pk])).content.decode()
    assert "No allergies recorded" in page
    assert "allergy-alert" not in page


def test_the_allergy_check_uses_the_orders_own_drugs(world: World) -> None:
    from ketamine_clinic.web.protocols.selectors import order_allergy_summary

    order: Any = world.write()
    patients.allergy_record(actor=world.actor(world.cast.bob), patient=world.cast.ana,
                            substance="Robinul", reaction="hives", severity="moderate")
    alerts = order_allergy_summary(order).alerts
    assert [(a.drug, a.role) for a in alerts] == [("glycopyrrolate", "premedication")]
