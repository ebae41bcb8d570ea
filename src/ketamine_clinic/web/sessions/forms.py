"""Bedside forms: few fields, big targets, every write with an idempotency key."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from ketamine_clinic.clinical import scales
from ketamine_clinic.clinical.discharge import get_score_definition, overridable_items
from ketamine_clinic.clinical.limit_checks import override_reasons
from ketamine_clinic.web.lib.forms import choice_field

NUM = {"inputmode": "decimal", "step": "any"}


class Entry(forms.Form):
    """Fields every bedside write carries."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=80)
    occurred_at = forms.DateTimeField(
        required=False, label="Time (blank = now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)


class StateChange(Entry):
    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class VitalsForm(Entry):
    systolic_bp_mmhg = forms.FloatField(label="Systolic BP (mmHg)", widget=forms.NumberInput(NUM))
    diastolic_bp_mmhg = forms.FloatField(label="Diastolic BP (mmHg)",
                                         widget=forms.NumberInput(NUM))
    heart_rate_per_min = forms.FloatField(label="Heart rate (/min)",
                                          widget=forms.NumberInput(NUM))
    respiratory_rate_per_min = forms.FloatField(label="Resp. rate (/min)",
                                                widget=forms.NumberInput(NUM))
    spo2_percent = forms.FloatField(label="SpO2 (%)", widget=forms.NumberInput(NUM))
    etco2_mmhg = forms.FloatField(label="EtCO2 (mmHg)", required=False,
                                  widget=forms.NumberInput(NUM))
    temperature_c = forms.FloatField(label="Temp (°C)", required=False,
                                     widget=forms.NumberInput(NUM))
    on_oxygen = forms.BooleanField(label="On oxygen", required=False)


class SedationForm(Entry):
    score = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args: Any, scale: str = "moaas", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sc = scales.get_scale(scale)
        self.scale = sc
        self.fields["score"].label = f"{sc.short} ({sc.version})"
        choice_field(self, "score").choices = [
            (lv.value, f"{lv.value:+d} {lv.meaning}" if scale == "rass"
             else f"{lv.value} {lv.meaning}")
            for lv in sc.levels]


class DissociationForm(Entry):
    def __init__(self, *args: Any, scale: str = scales.BEDSIDE_DISSOCIATION_SCALE,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sc = scales.get_scale(scale)
        self.scale = sc
        for n in sc.items:
            self.fields[f"item_{n}"] = forms.TypedChoiceField(
                label=f"Item {n}", coerce=int,
                choices=[(v, str(v)) for v in range(sc.item_min, sc.item_max + 1)])

    def items(self) -> dict[int, int]:
        return {int(k[5:]): v for k, v in self.cleaned_data.items() if k.startswith("item_")}


class PainForm(Entry):
    nrs = forms.TypedChoiceField(label="Pain (0–10)", coerce=int, widget=forms.RadioSelect,
                                 choices=[(v, str(v)) for v in range(11)])
    phase = forms.ChoiceField(required=False, choices=[
        ("", "(from the state)"), ("pre", "before"), ("during", "during"), ("end", "end"),
        ("recovery", "recovery")])


class AdverseEventForm(Entry):
    type = forms.ChoiceField(choices=[
        ("hypertension", "Hypertension"), ("tachycardia", "Tachycardia"),
        ("nausea_vomiting", "Nausea / vomiting"),
        ("hallucination_emergence", "Hallucinations / emergence reaction"),
        ("desaturation", "Desaturation"), ("other", "Other")])
    severity = forms.ChoiceField(choices=[("mild", "Mild"), ("moderate", "Moderate"),
                                          ("severe", "Severe")])
    description = forms.CharField(required=False)
    action_taken = forms.CharField(required=False)
    outcome = forms.CharField(required=False)


class NoteForm(Entry):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class GiveForm(Entry):
    """One dose from a line of the signed order (drug, unit and route come from the line;
    the dose is prefilled with the ordered dose)."""

    drug = forms.CharField(widget=forms.HiddenInput)
    unit = forms.CharField(widget=forms.HiddenInput)
    route = forms.CharField(widget=forms.HiddenInput)
    dose = forms.DecimalField(label="Dose", min_value=0, max_digits=8, decimal_places=3,
                              widget=forms.NumberInput(NUM))
    indication = forms.CharField(required=False, label="Why (as needed)")


class RateForm(StateChange):
    rate = forms.CharField(label="Rate", help_text='any form: "0.5 mg/kg/h", "60 mg/h", '
                                                  'or "60 mL/h"')
    confirm = forms.BooleanField(required=False, label="I confirm this rate (unit check)")
    override_code = forms.ChoiceField(required=False,
                                      label="Reason for a lower rate below the protocol minimum")
    override_text = forms.CharField(required=False, label="Explanation")
    physician_username = forms.CharField(required=False, label="Physician's user name")
    physician_password = forms.CharField(required=False, label="Physician's password",
                                         widget=forms.PasswordInput)
    physician_reason = forms.CharField(required=False, label="Physician's reason",
                                       widget=forms.Textarea(attrs={"rows": 1}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "override_code").choices = [("", "—")] + [
            (r.code, r.label) for r in override_reasons()]


class PreAssessmentForm(StateChange):
    iv_access_documented = forms.BooleanField(required=False, label="IV access in place")
    iv_site = forms.CharField(required=False, label="IV site")
    escort_name = forms.CharField(required=False, label="Adult escort (name, confirmed)")
    pregnancy_status = forms.ChoiceField(required=False, choices=[
        ("", "—"), ("not_pregnant", "Not pregnant"), ("pregnant", "Pregnant"),
        ("unknown", "Unknown"), ("not_applicable", "Not applicable")])


class ReasonForm(StateChange):
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    destination = forms.CharField(required=False)


class CorrectionForm(Entry):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             label="Why (required)")
    entered_in_error = forms.BooleanField(required=False, label="Entered in error (retract)")


class AckForm(forms.Form):
    response = forms.CharField(label="Response taken",
                               widget=forms.TextInput(attrs={"placeholder": "what you did"}))


class RecoveryForm(Entry):
    score_name = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, score: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        definition = get_score_definition(score)
        self.definition = definition
        self.initial.setdefault("score_name", score)
        self.computed = []
        for item in definition.items:
            if item.kind != "observed":
                self.computed.append(item)
                continue
            self.fields[f"obs_{item.key}"] = forms.TypedChoiceField(
                label=item.label, coerce=int, widget=forms.RadioSelect,
                required=item.default_points is None,
                initial=item.default_points,
                choices=[(lv.points, f"{lv.points} — {lv.criterion}") for lv in item.levels])

    def observed(self) -> dict[str, int]:
        return {k[4:]: v for k, v in self.cleaned_data.items()
                if k.startswith("obs_") and v not in (None, "")}


class DischargeForm(StateChange):
    escort_name = forms.CharField(required=False, label="Adult escort collecting the patient")
    instructions_given = forms.BooleanField(
        required=False, label="Written discharge instructions given (no driving for 24 h)")

    def __init__(self, *args: Any, physician: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.override_fields = []
        if physician:
            for item in overridable_items():
                name = f"override_{item}"
                self.fields[name] = forms.CharField(
                    required=False, label=f"Physician override of “{item.replace('_', ' ')}”: "
                                          "written reason",
                    widget=forms.Textarea(attrs={"rows": 1}))
                self.override_fields.append(name)

    def overrides(self) -> dict[str, str]:
        return {k[9:]: v for k, v in self.cleaned_data.items()
                if k.startswith("override_") and (v or "").strip()}
