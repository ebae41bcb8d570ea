"""The role × URL matrix that each area's access tests share.

An area lists its pages (:class:`Page`: how to call it and which roles may) over a world
fixture of its own; these helpers call a page and check the three answers every area
gives: a role gets exactly its pages (403 otherwise), a user of another site gets a 404
and an audit entry for a patient's page, and an anonymous visitor is sent to log in.

A matrix calls the same pages over the same world many times, so an area builds that world
once per module (:func:`built_once`) instead of once per case. Each case still starts from
the world as built: pytest-django runs every test in a transaction of its own, which here
becomes a savepoint inside the module's transaction and is rolled back after the case (its
audit entries, its writes, its logins), as Django's ``TestCase.setUpTestData`` does for a
class; and each case gets a deep copy of the world's Python objects (:func:`fresh`), so
that one case's changes to an instance in memory do not reach the next. The module's
transaction is rolled back at its end: nothing is left for the next module.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse

from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.accounts.roles import Role
from ketamine_clinic.web.audit.models import AuditEntry

ALL = frozenset(Role.values)
CLINICAL = frozenset({"physician", "nurse"})
PHYSICIAN = frozenset({"physician"})
ROLES = sorted(Role.values)

W = TypeVar("W")


@dataclass(frozen=True)
class Page(Generic[W]):
    name: str
    method: str  # "get" or "post"
    url: Callable[[W], str]
    allowed: frozenset[str]
    # The form (or JSON) body from the world and the user who sends it.
    data: Callable[[W, Any], dict[str, Any]] | None = None
    # About one patient: a user of another site gets 404 and an audit entry.
    scoped: bool = True
    api: bool = False  # a JSON endpoint of the API (the session's log-in is enough)


@contextmanager
def built_once(django_db_blocker: Any, folder: Path) -> Iterator[None]:
    """The database for a module-scoped world: build the world inside the block, yield it,
    and every test of the module runs inside this transaction (its own rolled back after
    it); the whole is rolled back when the module ends. ``folder`` takes the checkpoint
    files the world's audit and stock writes may make (``_audit_triggers`` gives each test
    its own as before)."""
    with (django_db_blocker.unblock(),
          override_settings(AUDIT_CHECKPOINTS=folder / "audit-checkpoints.log",
                            STOCK_CHECKPOINTS=folder / "stock-checkpoints"),
          transaction.atomic()):
        yield
        transaction.set_rollback(True)


def fresh(world: W) -> W:
    """A test's own copy of a module's world (instances and all): the rows are the same."""
    return copy.deepcopy(world)


def page_id(page: Page[Any]) -> str:
    return page.name


def call(client: Client, page: Page[W], world: W, user: Any = None) -> Any:
    """Send the page's request as the client's logged-in user (``user`` for the body)."""
    url = page.url(world)
    if page.method == "get":
        return client.get(url)
    data = page.data(world, user) if page.data else {}
    if page.api:
        return client.post(url, data, content_type="application/json")
    return client.post(url, data)


def assert_role_answer(response: Any, role: str, page: Page[Any],
                       reached: Collection[int] = (200, 302)) -> None:
    """An allowed role reaches the page (one of ``reached``); any other gets 403."""
    if role in page.allowed:
        assert response.status_code in reached, response.content[:800]
    else:
        assert response.status_code == 403, response.content[:300]


def denials(username: str, action: str = "") -> int:
    """Audit entries of ``username``'s refused reads (``action``: one kind only)."""
    entries = AuditEntry.objects.filter(username=username)
    if action:
        return entries.filter(action=action).count()
    return entries.filter(action__endswith="access_denied").count()


def assert_not_found_and_audited(response: Any, username: str, before: int,
                                 action: str = "") -> None:
    assert response.status_code == 404, response.content[:300]
    assert denials(username, action) == before + 1


def assert_other_site_kept_out(client: Client, page: Page[W], world: W, user: Any,
                               hidden: bytes = b"") -> None:
    """``user`` works at another site than the world's patient: a page their role may not
    open answers 403; a page about the patient 404, with the refusal in the audit trail; a
    page about no one patient opens, without ``hidden`` (the patient's name) on it."""
    client.force_login(user)
    before = denials(user.username)
    response = call(client, page, world, user)
    if user.role not in page.allowed:
        assert response.status_code == 403
    elif page.scoped:
        assert_not_found_and_audited(response, user.username, before)
    else:
        assert response.status_code == 200
        if hidden:
            assert hidden not in response.content


def assert_sent_to_log_in(response: Any) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def api_call(client: Client, user: Any, method: str, path: str, body: Any = None) -> Any:
    """A call to ``/api/v1{path}`` with a fresh bearer token of ``user`` (none: anonymous)."""
    kwargs: dict[str, Any] = {}
    if user is not None:
        _, raw = ApiToken.issue(user)
        kwargs["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method)(f"/api/v1{path}", **kwargs)
