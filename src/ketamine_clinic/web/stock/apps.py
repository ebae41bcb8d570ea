from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class StockConfig(AppConfig):
    """The controlled-substance record for ketamine (DEA Schedule III), issue 15."""

    name = "ketamine_clinic.web.stock"
    label = "stock"
    verbose_name = "Controlled-substance record"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Stock", "stock_home", Capability.VIEW_STOCK)]
