from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from ketamine_clinic.web.accounts.roles import Capability


def store_shipped_protocols(sender: AppConfig, *, apps: Any = None, using: str = "default",
                            **kwargs: Any) -> None:
    """After ``migrate`` (and a test database flush): store shipped protocol versions not yet
    in the database, so every database has them. Published versions are never replaced."""
    from django.db import router

    if apps is not None:  # a partial migration: the tables may not be there yet
        try:
            apps.get_model("protocols", "ProtocolVersion")
            apps.get_model("audit", "AuditEntry")
        except LookupError:
            return
    from ketamine_clinic.web.protocols.models import ProtocolVersion

    if not router.allow_migrate_model(using, ProtocolVersion):
        return
    from ketamine_clinic.web.protocols.services import protocol_sync_shipped

    protocol_sync_shipped(on_conflict="skip")


class ProtocolsConfig(AppConfig):
    name = "ketamine_clinic.web.protocols"
    label = "protocols"
    verbose_name = "Protocols, screening and consent"
    nav: list[tuple[str, str, Capability | None]] = [
        ("Protocols", "protocol_list", Capability.VIEW_PROTOCOLS)]
    patient_panels: list[str] = ["ketamine_clinic.web.protocols.views.screening_panel"]

    def ready(self) -> None:
        # Imported here: models and signals exist only once the app registry is ready.
        post_migrate.connect(store_shipped_protocols, sender=self,
                             dispatch_uid="protocols.store_shipped")
