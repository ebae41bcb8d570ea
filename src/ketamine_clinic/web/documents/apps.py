from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class DocumentsConfig(AppConfig):
    """Informed consent, patient education pages and discharge instruction sheets."""

    name = "ketamine_clinic.web.documents"
    label = "documents"
    verbose_name = "Consent, patient education and discharge instructions"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Patient education", "education_index", None)]
    patient_panels: list[str] = ["ketamine_clinic.web.documents.views.consent_panel"]
