from __future__ import annotations

from typing import Any

from django import forms

from ketamine_clinic.errors import UsageError
from ketamine_clinic.pk.parameter_sets import catalogue
from ketamine_clinic.pk.regimen import Bolus, Regimen, Segment
from ketamine_clinic.web.lib.forms import choice_field
from ketamine_clinic.web.simulation.services import DEFAULT_MODEL


def model_choices() -> list[tuple[str, str]]:
    cat = catalogue()
    pk = [(m.id, f"{m.name} — {m.compound}, {m.sampling}") for m in cat.pk.values()]
    pd = [(m.id, f"{m.name} (research PD model)") for m in cat.pd.values()]
    return pk + pd


def parse_segments(text: str, field: str = "segments") -> tuple[Segment, ...]:
    """Lines of ``START_MIN:END_MIN:RATE_MG_PER_H``."""
    out = []
    for n, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(":")
        if len(parts) != 3:
            raise UsageError(field, f"line {n} {line!r}: write the start minute, the end "
                                    "minute and the rate in mg/h, e.g. 0:60:60")
        try:
            start, end, rate = (float(p) for p in parts)
        except ValueError as exc:
            raise UsageError(field, f"line {n} {line!r}: the minutes and the rate must be "
                                    "numbers, e.g. 0:60:60") from exc
        out.append(Segment(start, end, rate))
    return tuple(out)


def parse_boluses(text: str, field: str = "boluses") -> tuple[Bolus, ...]:
    """Lines of ``AT_MIN:MG``."""
    out = []
    for n, line in enumerate(text.replace(",", "\n").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(":")
        try:
            at, mg = (float(p) for p in parts)
        except ValueError as exc:
            raise UsageError(field, f"line {n} {line!r}: write the minute and the dose in mg, "
                                    "e.g. 30:20") from exc
        out.append(Bolus(at, mg))
    return tuple(out)


class SimulatorForm(forms.Form):
    model = forms.ChoiceField(initial=DEFAULT_MODEL)
    drug = forms.ChoiceField(choices=[("racemic", "Racemic ketamine"),
                                      ("esketamine", "Esketamine (S-ketamine)")])
    weight_kg = forms.FloatField(label="Weight (kg)", min_value=0.1)
    age_years = forms.FloatField(label="Age (years)", required=False, min_value=0)
    segments = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), initial="0:60:60\n60:120:75\n120:240:90",
        help_text="One infusion segment a line: start minute, end minute and rate in mg/h, "
                  "e.g. 0:60:60")
    boluses = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 1}),
                              help_text="One dose a line: minute and mg, e.g. 30:20")
    threshold_ng_per_ml = forms.FloatField(
        label="Threshold (ng/mL)", required=False, min_value=0.001,
        help_text="Show when each concentration falls below this for good")
    population = forms.BooleanField(required=False, initial=True,
                                    label="Show the population band")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "model").choices = model_choices()

    def regimen(self) -> Regimen:
        data = self.cleaned_data
        return Regimen(parse_segments(data["segments"]), parse_boluses(data.get("boluses", "")),
                       data["drug"])
