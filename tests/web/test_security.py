"""Security settings: Argon2, login throttling, idle logoff, CSRF, deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def test_passwords_are_hashed_with_argon2(cast: Any) -> None:
    cast.bob.set_password("correct horse battery staple")
    cast.bob.save()
    assert cast.bob.password.startswith("argon2")


def test_login_is_locked_after_repeated_failures(cast: Any, client: Client) -> None:
    cast.bob.set_password("correct horse battery staple")
    cast.bob.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "bob", "password": "wrong"})
    response = client.post(reverse("login"),
                           {"username": "bob", "password": "correct horse battery staple"})
    assert response.status_code == 429
    assert "Too many failed" in response.content.decode()


def test_a_correct_login_lands_on_the_home_page(cast: Any, client: Client) -> None:
    cast.bob.set_password("correct horse battery staple")
    cast.bob.save()
    response = client.post(reverse("login"),
                           {"username": "bob", "password": "correct horse battery staple"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_sessions_expire_after_fifteen_idle_minutes_by_default() -> None:
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_a_post_without_a_csrf_token_is_refused(cast: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.bob)
    response = client.post(reverse("allergy_add", args=[cast.ana.pk]), {"substance": "latex"})
    assert response.status_code == 403
    assert not cast.ana.allergies.exists()


def test_production_settings_pass_the_deploy_check_with_no_warnings(tmp_path: Path) -> None:
    env = {**os.environ, "KETAMINE_CLINIC_ENV": "production",
           "KETAMINE_CLINIC_DATA_DIR": str(tmp_path),
           "KETAMINE_CLINIC_SECRET_KEY": "x" * 30 + "-a-long-random-production-key-" + "y" * 30}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), "check", "--deploy",
                          "--fail-level", "WARNING"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_spraying_one_password_over_many_usernames_locks_the_address(
    cast: Any, client: Client
) -> None:
    """Issue 13, finding 7: per address as well as per username and address."""
    cast.bob.set_password("correct horse battery staple")
    cast.bob.save()
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": f"guess{n}", "password": "Winter2026!"})
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT > settings.AXES_FAILURE_LIMIT
    response = client.post(reverse("login"),
                           {"username": "bob", "password": "correct horse battery staple"})
    assert response.status_code == 429
    other = Client(REMOTE_ADDR="10.1.2.3")  # another address is not locked
    ok = other.post(reverse("login"), {"username": "bob",
                                       "password": "correct horse battery staple"})
    assert ok.status_code == 302


def test_a_few_failures_from_an_address_do_not_lock_it(cast: Any, client: Client) -> None:
    cast.bob.set_password("correct horse battery staple")
    cast.bob.save()
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": f"typo{n}", "password": "wrong"})
    response = client.post(reverse("login"),
                           {"username": "bob", "password": "correct horse battery staple"})
    assert response.status_code == 302


def _expiry(client: Client) -> Any:
    from django.contrib.sessions.models import Session

    return Session.objects.get(session_key=client.session.session_key).expire_date


def test_background_polls_do_not_postpone_idle_logoff(cast: Any, client: Client) -> None:
    """Issue 13, finding 6: a poll reads the session but does not renew it."""
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client.force_login(cast.bob)
    soon = timezone.now() + timedelta(seconds=30)
    Session.objects.filter(session_key=client.session.session_key).update(expire_date=soon)
    poll = client.get(reverse("patient_list"), HTTP_HX_REQUEST="true",
                      HTTP_X_BACKGROUND_REQUEST="poll")
    assert poll.status_code == 200
    assert _expiry(client) == soon
    client.get(reverse("patient_list"))  # a person's request renews it
    assert _expiry(client) > soon + timedelta(seconds=settings.SESSION_COOKIE_AGE / 2)


def test_a_poll_after_idle_logoff_sends_the_page_to_the_login(cast: Any,
                                                              client: Client) -> None:
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client.force_login(cast.bob)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    poll = client.get(reverse("patient_list"), HTTP_HX_REQUEST="true",
                      HTTP_X_BACKGROUND_REQUEST="poll")
    assert poll.status_code == 200
    assert poll["HX-Redirect"].startswith(reverse("login"))
    assert b"<form" not in poll.content
