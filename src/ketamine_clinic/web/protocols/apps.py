from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class ProtocolsConfig(AppConfig):
    name = "ketamine_clinic.web.protocols"
    label = "protocols"
    verbose_name = "Protocols, screening and consent"
    nav: list[tuple[str, str, Capability | None]] = []  # set when the pages exist
    patient_panels: list[str] = []
