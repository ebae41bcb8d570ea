"""Order forms. Every value is text handed to the services, which parse it with the core's
units and name the field at fault."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from django import forms

from ketamine_clinic.clinical.dosing import default_rate_texts
from ketamine_clinic.clinical.limit_checks import override_reasons
from ketamine_clinic.clinical.order_defaults import default_maximum
from ketamine_clinic.clinical.protocol import Protocol
from ketamine_clinic.clinical.units import to_float
from ketamine_clinic.web.lib.forms import choice_field


def _n(value: Any) -> str:
    return f"{to_float(value):g}"


class OrderForm(forms.Form):
    vial_strength_mg_per_ml = forms.ChoiceField(label="Vial strength (mg/mL)")
    bag = forms.CharField(label="Bag preparation", max_length=60,
                          help_text="drug in the bag's final volume, e.g. 500 mg in 500 mL")
    weight_kg = forms.CharField(label="New weight (kg)", required=False, max_length=20,
                                help_text="leave empty to dose on the latest recorded weight")
    start_rate = forms.CharField(max_length=40, help_text='with its unit: "60 mg/h", '
                                 '"0.5 mg/kg/h" or "60 mL/h"')
    titration_step = forms.CharField(required=False, max_length=40,
                                     help_text="empty for a fixed rate")
    max_rate = forms.CharField(label="Maximum rate", max_length=40)
    min_step_interval_min = forms.CharField(label="Minimum minutes between increases",
                                            max_length=10)
    planned_duration_min = forms.CharField(label="Planned infusion time (min)", max_length=10)
    bolus = forms.CharField(required=False, max_length=40,
                            help_text='optional loading bolus, e.g. "0.35 mg/kg"')
    planned_sessions = forms.CharField(label="Sessions in the series", max_length=5)
    spacing_days = forms.CharField(label="Days between sessions", max_length=5)
    premedications = forms.MultipleChoiceField(required=False,
                                               widget=forms.CheckboxSelectMultiple)
    rescue_medications = forms.MultipleChoiceField(label="As-needed rescue medications",
                                                   required=False,
                                                   widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, protocol: Protocol, weight_kg: Fraction | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d = protocol.dosing
        start_text, max_text = default_rate_texts(protocol, weight_kg)
        unit = d.rate_unit
        # A protocol that caps itself keeps its cap; otherwise the maximum is lowered to the
        # highest step inside the soft limits for this weight (no override needed).
        suggested = default_maximum(protocol, weight_kg)
        capped = max_text != f"{_n(d.max_rate.value)} {unit}"
        if not capped:
            max_text = f"{_n(suggested.rate)} {unit}"
        choice_field(self, "vial_strength_mg_per_ml").choices = [
            (_n(q.value), f"{_n(q.value)} mg/mL") for q in protocol.drug.vial_strengths_mg_per_ml]
        allowed = ", ".join(_n(q.value) for q in protocol.drug.bag_concentrations_mg_per_ml)
        self.fields["bag"].help_text += f"; the protocol allows {allowed} mg/mL"
        choice_field(self, "premedications").choices = [
            (m.drug, f"{m.drug} {_n(m.dose.value)} {m.dose.unit} {m.route} — {m.timing}")
            for m in protocol.premedications]
        choice_field(self, "rescue_medications").choices = [
            (m.drug, f"{m.drug} {_n(m.dose.value)} {m.dose.unit} {m.route} — {m.indication}")
            for m in protocol.rescue_medications]
        if not self.is_bound:
            defaults = {
                "vial_strength_mg_per_ml": _n(protocol.drug.vial_strengths_mg_per_ml[0].value),
                "start_rate": start_text,
                "titration_step": "" if d.titration_step is None
                else f"{_n(d.titration_step.value)} {unit}",
                "max_rate": max_text,
                "min_step_interval_min": "" if d.min_step_interval_min is None
                else _n(d.min_step_interval_min.value),
                "planned_duration_min": _n(d.planned_duration_min.value),
                "planned_sessions": _n(protocol.series.sessions.value),
                "spacing_days": _n(protocol.series.spacing_days.value),
                "premedications": [m.drug for m in protocol.premedications],
                "rescue_medications": [m.drug for m in protocol.rescue_medications],
            }
            self.initial = {**defaults, **self.initial}
            if suggested.lowered_by and not capped:
                self.fields["max_rate"].help_text = (
                    f"suggested {_n(suggested.rate)} {unit}: the highest step inside the "
                    f"protocol's soft limits for this weight (protocol maximum "
                    f"{_n(d.max_rate.value)} {unit} needs an override)")


class ChangeForm(OrderForm):
    change_reason = forms.CharField(label="Why the order changes", max_length=500,
                                    widget=forms.Textarea(attrs={"rows": 2}))


class VerifyForm(forms.Form):
    concentration_mg_per_ml = forms.CharField(
        label="Bag concentration (mg/mL)", max_length=30,
        help_text="read it off the prepared bag's label")
    pump_rate_ml_per_h = forms.CharField(
        label="First pump rate (mL/h)", max_length=30,
        help_text="work it out yourself from the ordered start dose and the bag")


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500)


class ReportForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "must not be before the start")
        return data


def reason_choices() -> list[tuple[str, str]]:
    return [("", "— reason —"), *((r.code, r.label) for r in override_reasons())]


def overrides_from(post: Any) -> list[dict[str, str]]:
    """Per-limit overrides posted as ``override_code.<quantity>`` / ``override_text.<quantity>``."""
    out = []
    for key in post:
        if key.startswith("override_code."):
            quantity = key.split(".", 1)[1]
            code = post.get(key, "").strip()
            text = post.get(f"override_text.{quantity}", "")
            if code or text.strip():
                out.append({"quantity": quantity, "reason_code": code, "free_text": text})
    return out
