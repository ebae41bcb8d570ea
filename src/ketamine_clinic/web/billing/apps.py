from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "ketamine_clinic.web.billing"
    label = "billing"
    verbose_name = "The visit's billing summary"
