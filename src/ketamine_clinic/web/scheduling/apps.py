from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class SchedulingConfig(AppConfig):
    name = "ketamine_clinic.web.scheduling"
    label = "scheduling"
    verbose_name = "Chairs, opening hours and visits"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Today", "census_home", Capability.VIEW_PATIENTS),
        ("Calendar", "calendar_home", Capability.VIEW_PATIENTS)]
    patient_panels: list[str] = [
        "ketamine_clinic.web.scheduling.views.patient_visits_panel"]
