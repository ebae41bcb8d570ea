from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _reinstall_triggers(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """Every ``migrate`` puts back an append-only trigger that someone dropped."""
    from django.db import connections

    from ketamine_clinic.web.audit.triggers import install_triggers

    connection = connections[using]
    if "audit_auditlink" in connection.introspection.table_names():
        install_triggers(connection)


def _record_failed_login(sender: object, credentials: dict[str, Any],
                         request: Any = None, **kwargs: Any) -> None:
    """A failed log-in goes into the trail: the name tried and the address (no password;
    Django has already masked it). Bounded like all traffic without a log-in."""
    from ketamine_clinic.web.audit.services import Actor, audit_record, client_address

    username = str(credentials.get("username", ""))[:150]
    address = client_address(request) if request is not None else ""
    audit_record(actor=Actor(user=None, client_address=address), action="auth.login_failed",
                 object_type="user", detail={"username": username})


class AuditConfig(AppConfig):
    name = "ketamine_clinic.web.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        post_migrate.connect(_reinstall_triggers, sender=self,
                             dispatch_uid="audit_reinstall_triggers")
        user_login_failed.connect(_record_failed_login, dispatch_uid="audit_failed_login")
