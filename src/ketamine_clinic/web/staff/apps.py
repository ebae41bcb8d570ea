from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class StaffConfig(AppConfig):
    name = "ketamine_clinic.web.staff"
    label = "staff"
    verbose_name = "Staff administration and monitor devices"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Staff", "staff_list", Capability.MANAGE_STAFF)]
