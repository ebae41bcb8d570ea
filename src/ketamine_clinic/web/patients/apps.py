from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "ketamine_clinic.web.patients"
    label = "patients"
    verbose_name = "Patient registry"
