from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "ketamine_clinic.web.audit"
    label = "audit"
    verbose_name = "Audit trail"
