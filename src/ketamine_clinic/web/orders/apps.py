from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class OrdersConfig(AppConfig):
    name = "ketamine_clinic.web.orders"
    label = "orders"
    verbose_name = "Series and infusion orders"
    nav: list[tuple[str, str, Capability | None]] = []  # set when the pages exist
    patient_panels: list[str] = []
