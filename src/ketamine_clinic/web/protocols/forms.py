"""Forms of the protocols area: publishing a version, screening a patient, an override."""

from __future__ import annotations

from typing import Any

from django import forms

from ketamine_clinic.clinical.protocol import condition_vocabulary
from ketamine_clinic.clinical.screening import budapest_criteria
from ketamine_clinic.web.lib.forms import choice_field, model_choice_field
from ketamine_clinic.web.protocols.models import ProtocolVersion

# The largest protocol file accepted (the shipped ones are about 20 kB).
MAX_PROTOCOL_BYTES = 512 * 1024

TRI = [("yes", "Yes"), ("no", "No"), ("unknown", "Not known")]


class PublishForm(forms.Form):
    toml_text = forms.CharField(
        label="Protocol (TOML)", required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        help_text="Paste the whole file, or upload it below.")
    upload = forms.FileField(label="…or upload a .toml file", required=False)
    change_note = forms.CharField(
        label="What changed and why", widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept with the version, for everyone who reads it later.")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        upload = data.get("upload")
        if upload is not None:
            if upload.size > MAX_PROTOCOL_BYTES:
                self.add_error("upload", f"larger than {MAX_PROTOCOL_BYTES // 1024} kB")
                return data
            try:
                data["toml_text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("upload", "is not UTF-8 text")
                return data
        if not (data.get("toml_text") or "").strip():
            self.add_error("toml_text", "Paste the protocol's TOML text or upload its file.")
        return data


def _tri(label: str) -> forms.ChoiceField:
    # Not answered is "not known", never "no".
    return forms.ChoiceField(label=label, choices=TRI, initial="unknown", required=False,
                             widget=forms.RadioSelect)


class ScreeningForm(forms.Form):
    """The questions the registry does not answer. Every one starts as "not known"."""

    protocol_version = forms.ModelChoiceField(queryset=ProtocolVersion.objects.none(),
                                              empty_label=None)
    medications_complete = forms.BooleanField(
        required=False,
        label="The medication list above is complete (reviewed with the patient today, "
        "including over-the-counter and herbal products)")
    budapest_disproportionate_pain = _tri("Continuing pain, disproportionate to any "
                                          "inciting event")
    budapest_symptoms_asked = forms.BooleanField(
        required=False, label="Symptoms asked (tick each one the patient reports)")
    budapest_symptoms = forms.MultipleChoiceField(required=False,
                                                  widget=forms.CheckboxSelectMultiple)
    budapest_signs_examined = forms.BooleanField(
        required=False, label="Signs examined (tick each one seen today)")
    budapest_signs = forms.MultipleChoiceField(required=False,
                                               widget=forms.CheckboxSelectMultiple)
    budapest_no_better_diagnosis = _tri("No other diagnosis better explains the signs "
                                        "and symptoms")

    def __init__(self, *args: Any, versions: list[ProtocolVersion], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = model_choice_field(self, "protocol_version")
        field.queryset = ProtocolVersion.objects.filter(
            pk__in=[pv.pk for pv in versions]).order_by("name", "-version")
        field.label_from_instance = (  # type: ignore[method-assign]
            lambda obj: f"{obj.title} ({obj.name} v{obj.version})")
        for cid, condition in condition_vocabulary().items():
            self.fields[f"cond_{cid}"] = _tri(condition.question)
        crit = budapest_criteria()
        for kind in ("symptoms", "signs"):
            choice_field(self, f"budapest_{kind}").choices = [
                (item, f"{cat.label}: {text}") for cat in crit.categories
                for item, text in (cat.symptoms if kind == "symptoms" else cat.signs).items()]

    def condition_groups(self) -> list[tuple[str, list[Any]]]:
        groups: dict[str, list[Any]] = {}
        for cid, condition in condition_vocabulary().items():
            groups.setdefault(condition.group, []).append(self[f"cond_{cid}"])
        return list(groups.items())

    def answers(self) -> dict[str, Any]:
        """The answers in the form the screening service takes."""
        d = self.cleaned_data
        present, absent = [], []
        for cid in condition_vocabulary():
            answer = d.get(f"cond_{cid}")
            if answer == "yes":
                present.append(cid)
            elif answer == "no":
                absent.append(cid)
        tri = {"yes": True, "no": False, "unknown": None}
        symptoms = list(d.get("budapest_symptoms") or [])
        signs = list(d.get("budapest_signs") or [])
        checklist = {
            "disproportionate_pain": tri[d.get("budapest_disproportionate_pain") or "unknown"],
            "symptoms": symptoms if (symptoms or d.get("budapest_symptoms_asked")) else None,
            "signs": signs if (signs or d.get("budapest_signs_examined")) else None,
            "no_better_diagnosis": tri[d.get("budapest_no_better_diagnosis") or "unknown"],
        }
        recorded = any(v is not None for v in checklist.values())
        return {"medications_complete": bool(d.get("medications_complete")),
                "conditions": present, "conditions_absent": absent,
                "budapest": checklist if recorded else None}


class OverrideForm(forms.Form):
    rule = forms.CharField(widget=forms.HiddenInput)
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this reason does not stand in the way of treatment for this patient.")
