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

    def ready(self) -> None:
        # A discharge books the series' follow-ups in its transaction; the sessions area
        # sits below this one and asks through its hooks (imported here: the services
        # import the models, loaded only once the app registry is ready).
        # The follow-up places count day answers only after the series' last given session,
        # so they follow it when the sessions' summaries change it.
        from ketamine_clinic.web.outcomes import services, summaries
        from ketamine_clinic.web.sessions import hooks

        hooks.register(at_discharge=services.followups_at_discharge,
                       series_summarised=summaries.last_given_changed)
