"""Forms of the scheduling pages. Dates and clock times are the site's local ones."""

from __future__ import annotations

from typing import Any

from django import forms

from ketamine_clinic.web.lib.forms import choice_field
from ketamine_clinic.web.scheduling.checklist import checklist
from ketamine_clinic.web.scheduling.models import Visit


class BookSeriesForm(forms.Form):
    order = forms.TypedChoiceField(coerce=int, label="Order and series")
    first_day = forms.DateField(label="First visit on", widget=forms.DateInput(
        attrs={"type": "date"}))
    start_time = forms.TimeField(label="Starting at", widget=forms.TimeInput(
        attrs={"type": "time", "step": 900}))
    chair = forms.ChoiceField(label="Chair", required=False)
    visits = forms.IntegerField(label="Visits to book", min_value=1, required=False,
                                help_text="leave empty to book every visit still open")

    def __init__(self, *args: Any, orders: list[Any], chairs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "order").choices = [
            (o.pk, f"order {o.pk}: {o.series.get_kind_display().lower()}, "
                   f"{o.series.planned_sessions} visits every {o.series.spacing_days} day(s)")
            for o in orders]
        choice_field(self, "chair").choices = [
            ("", "any free chair"), *[(c, f"chair {c}") for c in chairs]]


class RescheduleForm(forms.Form):
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time", "step": 900}))
    chair = forms.ChoiceField(required=False)
    reason = forms.CharField(max_length=300)

    def __init__(self, *args: Any, chairs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "chair").choices = [
            ("", "any free chair"), *[(c, f"chair {c}") for c in chairs]]


class CancelForm(forms.Form):
    reason = forms.ChoiceField(choices=Visit.CancelReason.choices)
    note = forms.CharField(max_length=500, required=False)


class ChairForm(forms.Form):
    code = forms.CharField(max_length=20)
    label = forms.CharField(max_length=100, required=False)


class ChecklistForm(forms.Form):
    """One yes/no per checklist item (reference/previsit.toml), and the escort."""

    escort_name = forms.CharField(max_length=200, label="Escort who takes the patient home")
    escort_phone = forms.CharField(max_length=40, required=False, label="Escort's phone")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item in checklist().items:
            self.fields[f"item_{item.key}"] = forms.TypedChoiceField(
                label=item.question, choices=[("yes", "yes"), ("no", "no")],
                widget=forms.RadioSelect, coerce=lambda v: v == "yes")

    def answers(self) -> dict[str, bool]:
        return {k.removeprefix("item_"): v for k, v in self.cleaned_data.items()
                if k.startswith("item_")}
