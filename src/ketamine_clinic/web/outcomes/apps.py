from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class OutcomesConfig(AppConfig):
    name = "ketamine_clinic.web.outcomes"
    label = "outcomes"
    verbose_name = "Follow-up and outcomes"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Follow-ups", "followup_worklist", Capability.RECORD_FOLLOW_UP),
        ("Outcomes", "outcome_report", Capability.VIEW_REPORTS),
    ]
    patient_panels: list[str] = ["ketamine_clinic.web.outcomes.views.outcomes_panel"]
