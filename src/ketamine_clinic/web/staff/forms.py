from __future__ import annotations

from typing import Any

from django import forms

from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.lib.forms import choice_field


class StaffForm(forms.Form):
    username = forms.CharField(max_length=150)
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    title = forms.CharField(max_length=60, required=False, help_text="e.g. MD, RN")
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Role.choices)
    sites = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, sites: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site_rows = {str(s.pk): s for s in sites}
        choice_field(self, "sites").choices = [(str(s.pk), s.name) for s in sites]
        if editing:
            del self.fields["username"]
            del self.fields["email"]

    def chosen_sites(self) -> list[Any]:
        return [self.site_rows[pk] for pk in self.cleaned_data["sites"]]


class DeactivateForm(forms.Form):
    reason = forms.CharField(max_length=300)


class DeviceForm(forms.Form):
    name = forms.CharField(max_length=100, help_text='e.g. "chair 3 monitor"')
    site = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args: Any, sites: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "site").choices = [(s.pk, s.name) for s in sites]


class TokenForm(forms.Form):
    label = forms.CharField(max_length=100, required=False)
    expires_days = forms.IntegerField(min_value=1, required=False,
                                      help_text="empty: until revoked")
