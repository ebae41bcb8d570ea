from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "ketamine_clinic.web.reminders"
    label = "reminders"
    verbose_name = "Reminders, follow-up links and contact consent"
    patient_panels: list[str] = [
        "ketamine_clinic.web.reminders.views.patient_reminders_panel"]

    def ready(self) -> None:
        # Imported here: models and signals exist only once the app registry is ready.
        from ketamine_clinic.web.reminders.services import visit_reminders_schedule
        from ketamine_clinic.web.scheduling.signals import visits_booked

        def queue(sender: object, *, visits: list[object], **kwargs: object) -> None:
            visit_reminders_schedule(visits)

        # Reminders follow every booking, in its transaction (scheduling/signals.py).
        visits_booked.connect(queue, dispatch_uid="reminders.visit_reminders_schedule",
                              weak=False)
