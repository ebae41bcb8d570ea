"""Reading the audit trail."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from ketamine_clinic.web.accounts.models import Site, User
from ketamine_clinic.web.audit.models import AuditEntry


def visible_entries(user: User) -> QuerySet[AuditEntry]:
    """The entries ``user`` may see: those of the user's own sites.

    An entry with no site (a log-in, a command) is shown when it was done by someone who
    works at one of the user's sites; entries with neither site nor staff member (failed
    log-ins, the worker, commands) only to those who work at every site.
    """
    codes = list(user.sites.values_list("code", flat=True))
    colleagues = User.objects.filter(sites__code__in=codes).values("pk")
    visible = Q(site_code__in=codes) | Q(site_code="", user_id_value__in=colleagues)
    if codes and not Site.objects.exclude(code__in=codes).exists():
        visible |= Q(site_code="", user_id_value__isnull=True)
    return AuditEntry.objects.filter(visible)
