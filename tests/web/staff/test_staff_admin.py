"""Staff administration: create with a temporary password, change role and sites,
deactivate (never delete), unlock a locked-out log-in, force a password change; who may;
every change audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from ketamine_clinic.errors import UsageError
from ketamine_clinic.web.accounts.models import User
from ketamine_clinic.web.audit.models import AuditEntry
from ketamine_clinic.web.audit.services import Actor
from ketamine_clinic.web.staff import services

PASSWORD = "a long passphrase for tests"


def _admin(cast: Any) -> Actor:
    return Actor(user=cast.dave, client_address="127.0.0.1")


def _fail_logins(client: Client, username: str) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": username, "password": "wrong guess 1"})


def _log_in(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post(reverse("login"), {"username": username, "password": password})


def test_a_new_account_gets_a_temporary_password_it_must_change(cast: Any,
                                                                 client: Client) -> None:
    user, temporary = services.staff_create(
        actor=_admin(cast), username="nina", first_name="Nina", last_name="Park",
        role="nurse", sites=[cast.denver], title="RN")
    assert user.must_change_password
    assert _log_in(client, "nina", temporary).status_code == 302
    page = client.get(reverse("patient_list"))
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("password_change"))
    done = client.post(reverse("password_change"), {
        "old_password": temporary, "new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302
    user.refresh_from_db()
    assert not user.must_change_password
    assert client.get(reverse("patient_list")).status_code == 200
    assert AuditEntry.objects.filter(action="staff.create", object_id=str(user.pk)).exists()
    assert AuditEntry.objects.filter(action="auth.password_change").exists()


def test_a_taken_username_or_a_foreign_site_is_refused(cast: Any) -> None:
    with pytest.raises(UsageError, match="taken"):
        services.staff_create(actor=_admin(cast), username="BOB", first_name="B",
                              last_name="B", role="nurse", sites=[cast.denver])
    with pytest.raises(UsageError, match="you do not work at Boulder"):
        services.staff_create(actor=_admin(cast), username="newbie", first_name="N",
                              last_name="B", role="nurse", sites=[cast.boulder])


def test_role_and_sites_change_is_audited_with_before_and_after(cast: Any) -> None:
    services.staff_update(actor=_admin(cast), user=cast.bob, role="physician",
                          sites=[cast.denver], title="MD")
    cast.bob.refresh_from_db()
    assert cast.bob.role == "physician"
    entry = AuditEntry.objects.filter(action="staff.update").latest("pk")
    assert entry.detail["before"]["role"] == "nurse"
    assert entry.detail["after"]["role"] == "physician"


def test_an_administrator_keeps_the_sites_they_do_not_manage(cast: Any) -> None:
    # Alice works at Denver and Boulder; Dave manages Denver only.
    services.staff_update(actor=_admin(cast), user=cast.alice, role="physician",
                          sites=[cast.denver])
    assert set(cast.alice.sites.values_list("code", flat=True)) == {"denver", "boulder"}


def test_nobody_changes_their_own_role_or_deactivates_themselves(cast: Any) -> None:
    with pytest.raises(UsageError, match="your own role"):
        services.staff_update(actor=_admin(cast), user=cast.dave, role="nurse",
                              sites=[cast.denver])
    with pytest.raises(UsageError, match="your own account"):
        services.staff_set_active(actor=_admin(cast), user=cast.dave, active=False,
                                  reason="leaving")


def test_a_deactivated_account_cannot_log_in_and_is_kept(cast: Any, client: Client) -> None:
    cast.bob.set_password(PASSWORD)
    cast.bob.save()
    with pytest.raises(UsageError, match="reason"):
        services.staff_set_active(actor=_admin(cast), user=cast.bob, active=False)
    services.staff_set_active(actor=_admin(cast), user=cast.bob, active=False,
                              reason="left the clinic")
    assert _log_in(client, "bob").status_code == 200  # the form again: refused
    assert User.objects.filter(username="bob", is_active=False).exists()
    services.staff_set_active(actor=_admin(cast), user=cast.bob, active=True)
    assert _log_in(client, "bob").status_code == 302


def test_the_administrator_unlocks_a_locked_out_account(cast: Any, client: Client) -> None:
    cast.bob.set_password(PASSWORD)
    cast.bob.save()
    _fail_logins(client, "bob")
    assert services.login_locked(cast.bob)
    locked = _log_in(client, "bob")
    assert "locked" in locked.content.decode().lower()
    cleared = services.staff_unlock(actor=_admin(cast), user=cast.bob)
    assert cleared >= 1
    assert not services.login_locked(cast.bob)
    assert _log_in(client, "bob").status_code == 302
    assert AuditEntry.objects.filter(action="staff.unlock", object_id=str(cast.bob.pk)).exists()


def test_a_forced_password_change_applies_at_the_next_page(cast: Any, client: Client) -> None:
    client.force_login(cast.bob)
    assert client.get(reverse("patient_list")).status_code == 200
    services.staff_force_password_change(actor=_admin(cast), user=cast.bob)
    assert client.get(reverse("patient_list")).status_code == 302
    temporary = services.staff_force_password_change(actor=_admin(cast), user=cast.bob,
                                                     temporary=True)
    cast.bob.refresh_from_db()
    assert temporary
    assert cast.bob.check_password(temporary)


@pytest.mark.parametrize("role", ["physician", "nurse", "front_desk", "auditor"])
def test_only_administrators_reach_the_staff_pages(cast: Any, client: Client,
                                                   role: str) -> None:
    client.force_login(cast.by_role()[role])
    assert client.get(reverse("staff_list")).status_code == 403
    assert client.post(reverse("staff_action", args=[cast.bob.pk, "unlock"])).status_code == 403


def test_an_administrator_sees_only_the_staff_of_their_sites(cast: Any, client: Client) -> None:
    client.force_login(cast.dave)
    html = client.get(reverse("staff_list")).content.decode()
    assert 'data-user="bob"' in html
    assert 'data-user="oscar"' not in html
    assert client.get(reverse("staff_detail", args=[cast.oscar.pk])).status_code == 404


def test_the_staff_pages_create_change_and_deactivate(cast: Any, client: Client) -> None:
    client.force_login(cast.dave)
    created = client.post(reverse("staff_create"), {
        "username": "sam", "first_name": "Sam", "last_name": "Lee", "title": "",
        "email": "", "role": "front_desk", "sites": [str(cast.denver.pk)]})
    assert 'id="temporary-password"' in created.content.decode()
    sam = User.objects.get(username="sam")
    saved = client.post(reverse("staff_detail", args=[sam.pk]), {
        "first_name": "Sam", "last_name": "Lee", "title": "", "role": "nurse",
        "sites": [str(cast.denver.pk)]})
    assert saved.status_code == 302
    client.post(reverse("staff_action", args=[sam.pk, "deactivate"]), {"reason": "moved"})
    sam.refresh_from_db()
    assert sam.role == "nurse"
    assert not sam.is_active
