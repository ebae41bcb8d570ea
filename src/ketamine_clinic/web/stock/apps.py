from django.apps import AppConfig

from ketamine_clinic.web.accounts.roles import Capability


class StockConfig(AppConfig):
    """The controlled-substance record for ketamine (DEA Schedule III)."""

    name = "ketamine_clinic.web.stock"
    label = "stock"
    verbose_name = "Controlled-substance record"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Stock", "stock_home", Capability.VIEW_STOCK)]

    def ready(self) -> None:
        # The bedside asks the ketamine record before a session closes and tells it when
        # one has (the sessions area does not import this one: it sits below).
        from ketamine_clinic.web.sessions import hooks
        from ketamine_clinic.web.stock import services

        hooks.register(close_check=services.session_close_hold,
                       on_close=services.session_closed, link=services.session_record_link)
