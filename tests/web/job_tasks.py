"""A job for the worker's own tests: it records that it ran by creating a clinic site."""

from __future__ import annotations

from django_tasks import task


@task()
def create_site(code: str) -> str:
    from ketamine_clinic.web.accounts.models import Site

    site, _ = Site.objects.get_or_create(code=code, defaults={"name": code.title()})
    return site.code
