from __future__ import annotations

from typing import Any

from django import forms

from ketamine_clinic.web.lib.forms import choice_field
from ketamine_clinic.web.protocols.models import Consent


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class ConsentForm(forms.Form):
    protocol_version = forms.IntegerField(widget=forms.HiddenInput)
    document_sha256 = forms.CharField(widget=forms.HiddenInput, max_length=64)
    method = forms.ChoiceField(choices=Consent.Method.choices, widget=forms.RadioSelect,
                               initial=Consent.Method.SIGNATURE)
    explained_by = forms.ChoiceField(label="Explained by", choices=())
    signed_at = forms.DateTimeField(label="Signed at", widget=DateTimeInput)
    signature_strokes = forms.CharField(widget=forms.HiddenInput, required=False)
    pad_width = forms.IntegerField(widget=forms.HiddenInput, required=False)
    pad_height = forms.IntegerField(widget=forms.HiddenInput, required=False)
    paper_attested = forms.BooleanField(
        required=False,
        label="I attest that the patient signed the paper consent form with this text")
    paper_reference = forms.CharField(
        required=False, max_length=200, label="Where the signed paper form is kept",
        help_text="e.g. scanned document number or chart section")

    def __init__(self, *args: Any, clinicians: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "explained_by").choices = [
            (str(u.pk), u.display_name) for u in clinicians]


class WithdrawForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000,
                             help_text="What the patient said, and who was present")
