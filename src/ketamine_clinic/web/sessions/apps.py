from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class SessionsConfig(AppConfig):
    name = "ketamine_clinic.web.sessions"
    label = "infusion_sessions"  # "sessions" is Django's own session app
    verbose_name = "Infusion sessions, recovery and discharge"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Chairs", "session_board", Capability.VIEW_PATIENTS)]
    patient_panels: list[str] = [
        "ketamine_clinic.web.sessions.views.patient_sessions_panel"]
