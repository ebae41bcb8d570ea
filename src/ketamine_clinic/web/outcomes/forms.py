from __future__ import annotations

from typing import Any

from django import forms

from ketamine_clinic.clinical.scales import get_scale
from ketamine_clinic.web.lib.forms import choice_field
from ketamine_clinic.web.outcomes import policy
from ketamine_clinic.web.outcomes.selectors import DIAGNOSIS_GROUPS


def _nrs_choices() -> list[tuple[int, str]]:
    nrs = get_scale("pain_nrs")
    return [(lv.value, f"{lv.value}" + (f" – {lv.meaning}" if lv.meaning != str(lv.value)
                                         else "")) for lv in nrs.levels]


class QuestionnaireForm(forms.Form):
    """What the patient (or staff for them) answers at a follow-up point."""

    pain_average_nrs = forms.TypedChoiceField(
        label="Your AVERAGE pain over the last 24 hours (0 = no pain, 10 = worst imaginable)",
        coerce=int, widget=forms.RadioSelect)
    pain_worst_nrs = forms.TypedChoiceField(
        label="Your WORST pain over the last 24 hours", coerce=int, widget=forms.RadioSelect)
    global_impression = forms.TypedChoiceField(
        label="Since the start of treatment, how would you describe the change in your "
              "pain and activity?", coerce=int, required=False, empty_value=None,
        widget=forms.RadioSelect)
    opioid_mme_per_day = forms.DecimalField(
        label="Opioid pain medicine per day, in oral morphine milligram equivalents (MME)",
        required=False, min_value=0, decimal_places=1, max_digits=7,
        help_text="Leave empty if you take no opioid, or if staff will work it out.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "pain_average_nrs").choices = _nrs_choices()
        choice_field(self, "pain_worst_nrs").choices = _nrs_choices()
        choice_field(self, "global_impression").choices = policy.global_impression_choices()


class StaffAnswerForm(QuestionnaireForm):
    answered_at = forms.DateTimeField(
        label="Answered at", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    corrects = forms.IntegerField(required=False, widget=forms.HiddenInput)
    correction_reason = forms.CharField(label="Reason for the correction", required=False,
                                        widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pain_average_nrs"].label = "Average pain, last 24 h (0–10 NRS)"
        self.fields["pain_worst_nrs"].label = "Worst pain, last 24 h (0–10 NRS)"
        self.fields["global_impression"].label = "Global impression of change"
        self.fields["opioid_mme_per_day"].label = "Opioids, MME per day"
        self.fields["opioid_mme_per_day"].help_text = ""
        choice_field(self, "global_impression").choices = [
            ("", "not asked"), *policy.global_impression_choices()]
        for name in ("pain_average_nrs", "pain_worst_nrs", "global_impression"):
            field = choice_field(self, name)
            field.widget = forms.Select()
            field.choices = field.choices  # the setter hands them to the new widget


class ReportFilterForm(forms.Form):
    site = forms.ChoiceField(required=False)
    protocol = forms.ChoiceField(required=False)
    diagnosis = forms.ChoiceField(
        required=False, choices=[("", "All diagnoses"), *[(g, {"crps": "CRPS",
                                                                "other": "Other"}[g])
                                                           for g in DIAGNOSIS_GROUPS]])
    date_from = forms.DateField(required=False, label="Series from",
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="to",
                              widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, sites: Any, protocols: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "site").choices = [
            ("", "All my sites"), *[(s.code, s.name) for s in sites]]
        choice_field(self, "protocol").choices = [
            ("", "All protocols"), *[(p, p) for p in protocols]]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        lo, hi = data.get("date_from"), data.get("date_to")
        if lo and hi and lo > hi:
            self.add_error("date_to", "is before the start date")
        return data
