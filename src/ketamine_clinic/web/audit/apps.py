from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from ketamine_clinic.web.audit.actions import AuditAction


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
    audit_record(actor=Actor(user=None, client_address=address),
                 action=AuditAction.AUTH_LOGIN_FAILED,
                 object_type="user", detail={"username": username})


def _record_lockout(sender: object, request: Any = None, username: str | None = None,
                    ip_address: str | None = None, **kwargs: Any) -> None:
    """django-axes locked a username (or an address) after repeated failures."""
    from ketamine_clinic.web.audit.services import Actor, audit_record, client_address

    address = client_address(request) if request is not None else str(ip_address or "")
    audit_record(actor=Actor(user=None, client_address=address), action=AuditAction.AUTH_LOCKED_OUT,
                 object_type="user", detail={"username": str(username or "")[:150]})


def _private_database_file(sender: object, connection: Any, **kwargs: Any) -> None:
    """The SQLite file (and its WAL and shared-memory files) readable by the service user
    only, whatever the umask was when SQLite created it."""
    import os
    from pathlib import Path

    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict.get("NAME", ""))
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    for path in (Path(name), Path(f"{name}-wal"), Path(f"{name}-shm")):
        try:
            if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
                path.chmod(0o600)
        except FileNotFoundError:
            pass


class AuditConfig(AppConfig):
    name = "ketamine_clinic.web.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Imported here: models and signals exist only once the app registry is ready.
        from django.contrib.auth.signals import user_login_failed
        from django.db.backends.signals import connection_created

        post_migrate.connect(_reinstall_triggers, sender=self,
                             dispatch_uid="audit_reinstall_triggers")
        user_login_failed.connect(_record_failed_login, dispatch_uid="audit_failed_login")
        from axes.signals import user_locked_out

        user_locked_out.connect(_record_lockout, dispatch_uid="audit_lockout")
        connection_created.connect(_private_database_file, dispatch_uid="private_sqlite_file")
