"""Request types for views, so that mypy knows what the middleware put on a request.

``HtmxHttpRequest`` is any request through ``django_htmx``'s middleware (``request.htmx``).
``AuthedHttpRequest`` is one that passed ``login_required`` (or ``capability_required``):
its ``user`` is a signed-in :class:`User`, never ``AnonymousUser``. Annotate a view with it
only behind one of those decorators; public views (questionnaire links, webhooks, the
education pages) keep ``HttpRequest``.
"""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from ketamine_clinic.web.accounts.models import User


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class AuthedHttpRequest(HtmxHttpRequest):
    user: User
