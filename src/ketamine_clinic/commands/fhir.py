"""``ketamine-clinic fhir token``: a read-only FHIR token for a system client.

The token carries the ``fhir_read`` scope: it reads ``/fhir/`` as its user (that user's
role and sites) and nothing else, and stops working at ``--days`` or when revoked.
"""

from __future__ import annotations

# Lazy imports: each handler imports what it needs (Django and the models after
# setup_django, the core and its libraries) so that building the parser for --help or
# any one subcommand loads nothing else (tests/test_cli_startup.py).
import argparse
from datetime import timedelta

from ketamine_clinic.commands.django_setup import add_data_dir, setup_django
from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.audit.actions import AuditAction


def cmd_fhir_token(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise UsageError("--days", "must be at least 1")
    setup_django(args.data_dir)
    from django.db import transaction
    from django.utils import timezone

    from ketamine_clinic.web.accounts.models import ApiToken, User
    from ketamine_clinic.web.audit.services import Actor, audit_record

    user = User.objects.filter(username=args.username, is_active=True).first()
    if user is None:
        raise UsageError("--username", f"no active user {args.username}")
    with transaction.atomic():
        token, raw = ApiToken.issue(user, label=args.label)
        token.scope = ApiToken.Scope.FHIR_READ
        token.expires_at = timezone.now() + timedelta(days=args.days)
        token.save(update_fields=["scope", "expires_at"])
        audit_record(actor=Actor(user=None, client_address="cli"), action=AuditAction.TOKEN_CREATE,
                     object_type="user", object_id=user.pk,
                     detail={"token_prefix": token.prefix, "scope": token.scope,
                             "expires_at": token.expires_at})
    print(raw)
    print(f"Read-only FHIR token for {user.username}, valid until "
          f"{timezone.localtime(token.expires_at):%Y-%m-%d %H:%M %Z}.")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fhir", help="FHIR API tools", description="FHIR API tools.")
    fhir_sub = p.add_subparsers(dest="fhir_command", required=True)
    q = fhir_sub.add_parser("token", help="create a read-only FHIR token and print it once")
    add_data_dir(q)
    q.add_argument("--username", required=True, help="the account the client reads as")
    q.add_argument("--label", default="", help="e.g. the client's name")
    q.add_argument("--days", type=int, default=90, help="days until it expires (default 90)")
    q.set_defaults(func=cmd_fhir_token)
