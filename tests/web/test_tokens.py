"""Issue 13, finding 8: API tokens expire, are listed and revoked from the command line
and the app; a revoked, expired or made-up token gets 401 (not a CSRF 403)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ketamine_clinic.cli import main
from ketamine_clinic.web.accounts.models import ApiToken
from ketamine_clinic.web.accounts.tokens import token_issue
from ketamine_clinic.web.audit.services import Actor


def _post_patient(token: str) -> Any:
    client = Client(enforce_csrf_checks=True)
    return client.post("/api/v1/patients", json.dumps({"site": "denver"}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def _get(token: str) -> Any:
    return Client().get("/api/v1/patients", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize("kind", ["bogus", "revoked", "expired"])
def test_a_token_that_does_not_authenticate_gets_401_not_a_csrf_403(cast: Any,
                                                                    kind: str) -> None:
    token, raw = token_issue(actor=Actor(user=None), user=cast.carol)
    assert _get(raw).status_code == 200
    if kind == "bogus":
        raw = "kc_" + "x" * 43
    elif kind == "revoked":
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    else:
        ApiToken.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1))
    for response in (_get(raw), _post_patient(raw)):
        assert response.status_code == 401, response.content
        assert response.json()["errors"][0]["field"] == "Authorization"


def test_a_new_token_expires_after_the_configured_days(cast: Any, settings: Any) -> None:
    token, _ = token_issue(actor=Actor(user=None), user=cast.bob)
    assert token.expires_at is not None
    days = (token.expires_at - timezone.now()).total_seconds() / 86400
    assert settings.API_TOKEN_DAYS - 1 < days <= settings.API_TOKEN_DAYS


def test_the_command_line_lists_and_revokes_a_token(cast: Any, capsys: Any) -> None:
    assert main(["token", "create", "--username", "bob", "--label", "pump gateway",
                 "--days", "7"]) == 0
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(token_sha256=ApiToken.digest(raw))
    assert _get(raw).status_code == 200
    assert main(["token", "list", "--username", "bob"]) == 0
    listing = capsys.readouterr().out
    assert f"{token.prefix}…" in listing
    assert "pump gateway" in listing
    assert "active" in listing
    assert main(["token", "revoke", token.prefix]) == 0
    assert "Revoked token" in capsys.readouterr().out
    assert _get(raw).status_code == 401
    assert main(["token", "list", "--username", "bob"]) == 0
    assert token.prefix not in capsys.readouterr().out  # revoked ones only with --all
    assert main(["token", "list", "--all"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["token", "revoke", token.prefix]) == 2  # already revoked: says so
    assert "already revoked" in capsys.readouterr().err
    from ketamine_clinic.web.audit.models import AuditEntry

    assert AuditEntry.objects.filter(action="token.revoke").count() == 1


def test_the_app_creates_shows_once_and_revokes_a_token(cast: Any, client: Client) -> None:
    client.force_login(cast.bob)
    page = client.post(reverse("token_list"), {"label": "laptop", "days": "30"})
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    match = re.search(r'id="raw-token">(kc_[^<]+)<', page.content.decode())
    assert match is not None
    raw = match.group(1)
    assert _get(raw).status_code == 200
    token = ApiToken.objects.get(token_sha256=ApiToken.digest(raw))
    assert raw not in client.get(reverse("token_list")).content.decode()  # shown once
    done = client.post(reverse("token_revoke", args=[token.pk]), follow=True)
    assert "revoked" in done.content.decode()
    assert _get(raw).status_code == 401


def test_only_an_administrator_of_the_site_sees_and_revokes_others_tokens(
    cast: Any, client: Client
) -> None:
    bobs, _ = token_issue(actor=Actor(user=None), user=cast.bob)  # Denver
    oscars, _ = token_issue(actor=Actor(user=None), user=cast.oscar)  # Boulder
    client.force_login(cast.carol)  # front desk: only her own
    assert bobs.prefix not in client.get(reverse("token_list")).content.decode()
    assert client.post(reverse("token_revoke", args=[bobs.pk])).status_code == 404
    client.force_login(cast.dave)  # Denver's administrator
    listing = client.get(reverse("token_list")).content.decode()
    assert bobs.prefix in listing
    assert oscars.prefix not in listing
    assert client.post(reverse("token_revoke", args=[oscars.pk])).status_code == 404
    assert client.post(reverse("token_revoke", args=[bobs.pk])).status_code == 302
    bobs.refresh_from_db()
    oscars.refresh_from_db()
    assert bobs.revoked_at is not None
    assert oscars.revoked_at is None


def test_a_tokens_last_use_is_written_only_once_the_stored_time_is_older_than_the_setting(
        cast: Any, settings: Any) -> None:
    """"Last used" is kept to API_TOKEN_LAST_USED_SECONDS: a request soon after the last
    write leaves the row alone; one after the interval (or with 0) writes it again."""
    settings.API_TOKEN_LAST_USED_SECONDS = 60
    token, raw = token_issue(actor=Actor(user=None), user=cast.carol)
    assert _get(raw).status_code == 200
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    assert _get(raw).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    older = first - timedelta(seconds=61)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=older)
    assert _get(raw).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first
    settings.API_TOKEN_LAST_USED_SECONDS = 0
    before = ApiToken.objects.get(pk=token.pk).last_used_at
    assert _get(raw).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at > before
