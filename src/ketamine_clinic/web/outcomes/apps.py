from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class OutcomesConfig(AppConfig):
    name = "ketamine_clinic.web.outcomes"
    label = "outcomes"
    verbose_name = "Follow-up and outcomes"
    nav: list[tuple[str, str, Capability | None]] = []  # set when the pages exist
    patient_panels: list[str] = []
