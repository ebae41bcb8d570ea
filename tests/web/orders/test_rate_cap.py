"""Issue 12: Schwartzman's start rate is min(0.35 mg/kg/h, 25 mg/h): the order form's
defaults cap themselves for a heavy patient, so the default order passes the hard limit."""

from __future__ import annotations

from fractions import Fraction

from ketamine_clinic.clinical.protocol import load_protocol
from ketamine_clinic.web.orders.forms import OrderForm


def test_the_schwartzman_order_form_starts_at_25_mg_per_h_for_a_90_kg_patient() -> None:
    form = OrderForm(protocol=load_protocol("schwartzman-2009"), weight_kg=Fraction(90))
    assert (form.initial["start_rate"], form.initial["max_rate"]) == ("25 mg/h", "25 mg/h")


def test_a_light_patient_keeps_the_weight_based_default() -> None:
    form = OrderForm(protocol=load_protocol("schwartzman-2009"), weight_kg=Fraction(60))
    assert form.initial["start_rate"] == "0.35 mg/kg/h"


def test_a_protocol_without_a_cap_is_unchanged() -> None:
    form = OrderForm(protocol=load_protocol("consensus-2018"), weight_kg=Fraction(150))
    assert form.initial["start_rate"] == "0.5 mg/kg/h"
