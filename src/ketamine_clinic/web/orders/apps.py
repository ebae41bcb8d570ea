from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class OrdersConfig(AppConfig):
    name = "ketamine_clinic.web.orders"
    label = "orders"
    verbose_name = "Series and infusion orders"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Orders", "order_list", Capability.VERIFY_ORDER),
        ("Limit events", "limit_report", Capability.VIEW_REPORTS),
    ]
    patient_panels: list[str] = ["ketamine_clinic.web.orders.views.patient_panel"]
