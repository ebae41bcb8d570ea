from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from ketamine_clinic.clinical.codes import diagnosis_catalogue
from ketamine_clinic.web.accounts.models import Site
from ketamine_clinic.web.lib.forms import choice_field, model_choice_field
from ketamine_clinic.web.patients.models import (
    MeasurementKind,
    PregnancyStatus,
    SexAtBirth,
    TestOutcome,
)


class DateInput(forms.DateInput):
    input_type = "date"


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class PatientForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none())
    mrn = forms.CharField(label="MRN", max_length=32)
    given_name = forms.CharField(max_length=100)
    family_name = forms.CharField(max_length=100)
    date_of_birth = forms.DateField(widget=DateInput)
    sex_at_birth = forms.ChoiceField(choices=SexAtBirth.choices)
    phone = forms.CharField(max_length=40, required=False)
    email = forms.EmailField(required=False)
    address = forms.CharField(max_length=300, required=False)
    escort_name = forms.CharField(label="Emergency contact / escort", max_length=200,
                                  required=False)
    escort_phone = forms.CharField(max_length=40, required=False)
    escort_relationship = forms.CharField(max_length=60, required=False)

    def __init__(self, *args: Any, sites: QuerySet[Site] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "site").queryset = sites


class AmendForm(forms.Form):
    given_name = forms.CharField(max_length=100)
    family_name = forms.CharField(max_length=100)
    mrn = forms.CharField(label="MRN", max_length=32)
    date_of_birth = forms.DateField(widget=DateInput)
    sex_at_birth = forms.ChoiceField(choices=SexAtBirth.choices)
    phone = forms.CharField(max_length=40, required=False)
    email = forms.EmailField(required=False)
    address = forms.CharField(max_length=300, required=False)
    escort_name = forms.CharField(label="Emergency contact / escort", max_length=200,
                                  required=False)
    escort_phone = forms.CharField(max_length=40, required=False)
    escort_relationship = forms.CharField(max_length=60, required=False)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why the record is being corrected")


class MeasurementForm(forms.Form):
    kind = forms.ChoiceField(choices=MeasurementKind.choices)
    value_number = forms.DecimalField(label="Value", required=False, max_digits=7,
                                      decimal_places=2)
    value_code = forms.ChoiceField(label="Pregnancy status or test result", required=False,
                                   choices=[("", "—"), *PregnancyStatus.choices,
                                            *TestOutcome.choices])
    measured_at = forms.DateTimeField(widget=DateTimeInput)
    note = forms.CharField(max_length=200, required=False)
    confirmed = forms.BooleanField(
        label="I have checked this weight (scale and unit)", required=False,
        help_text="needed when the weight differs a lot from the last one")


class DiagnosisForm(forms.Form):
    code = forms.ChoiceField(choices=())
    diagnosed_on = forms.DateField(widget=DateInput)
    note = forms.CharField(max_length=500, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "code").choices = [
            (f"{c.system}:{c.code}", f"{c.code} — {c.display}")
            for c in diagnosis_catalogue().values()
        ]


class AllergyForm(forms.Form):
    substance = forms.CharField(max_length=120)
    reaction = forms.CharField(max_length=200, required=False)
    severity = forms.ChoiceField(required=False, choices=[
        ("", "—"), ("mild", "Mild"), ("moderate", "Moderate"), ("severe", "Severe")])


class MedicationForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="generic name")
    dose = forms.CharField(max_length=60, required=False)
    route = forms.CharField(max_length=30, required=False)
    start_date = forms.DateField(widget=DateInput, required=False)


class InErrorForm(forms.Form):
    reason = forms.CharField(max_length=500)
