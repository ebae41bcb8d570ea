from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "ketamine_clinic.web.reminders"
    label = "reminders"
    verbose_name = "Reminders, follow-up links and contact consent"
    patient_panels: list[str] = [
        "ketamine_clinic.web.reminders.views.patient_reminders_panel"]
