from __future__ import annotations

from django.apps import AppConfig


class LibConfig(AppConfig):
    """The shell's shared layer: no models; checks connected when Django starts."""

    name = "ketamine_clinic.web.lib"
    label = "kc_lib"

    def ready(self) -> None:
        # Imported here: models and signals exist only once the app registry is ready.
        from django.db.models.signals import pre_save

        from ketamine_clinic.web.lib.columns import on_pre_save

        pre_save.connect(on_pre_save, dispatch_uid="ketamine_clinic.columns")
