"""Issue 13, finding 14: response headers, the API docs behind log-in and offline, and the
forwarded-protocol header trusted only behind a configured proxy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client
from django.urls import reverse

from ketamine_clinic.web.accounts.models import ApiToken

ROOT = Path(__file__).resolve().parents[2]


def test_patient_pages_and_api_answers_are_not_cached(cast: Any, client: Client) -> None:
    client.force_login(cast.bob)
    page = client.get(reverse("patient_detail", args=[cast.ana.pk]))
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    _, raw = ApiToken.issue(cast.bob)
    answer = Client().get(f"/api/v1/patients/{cast.ana.pk}", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    refused = Client().get("/api/v1/patients")  # even a 401 carries it
    assert refused["Cache-Control"] == "no-store"


def test_every_answer_carries_a_permissions_policy(client: Client) -> None:
    policy = client.get(reverse("login"))["Permissions-Policy"]
    assert "camera=()" in policy
    assert "geolocation=()" in policy
    assert "microphone=()" in policy


def test_the_api_docs_and_document_need_a_login_or_a_token(cast: Any, client: Client) -> None:
    for path in ("/api/v1/docs", "/api/v1/openapi.json"):
        anonymous = client.get(path)
        assert anonymous.status_code == 302
        assert anonymous["Location"].startswith(reverse("login"))
        assert client.get(path, HTTP_AUTHORIZATION="Bearer kc_made_up").status_code == 401
    _, raw = ApiToken.issue(cast.bob)
    schema = client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert schema.status_code == 200
    assert "/api/v1/patients" in schema.json()["paths"]
    client.force_login(cast.bob)
    docs = client.get("/api/v1/docs").content.decode()
    assert "swagger-ui-bundle.js" in docs
    assert "cdn." not in docs
    assert "https://" not in docs.split("<body")[0]


def _proxy_header(env_extra: dict[str, str], tmp_path: Path) -> str:
    env = {**os.environ, "KETAMINE_CLINIC_ENV": "production",
           "KETAMINE_CLINIC_DATA_DIR": str(tmp_path),
           "KETAMINE_CLINIC_SECRET_KEY": "x" * 60, **env_extra}
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", "import django, os; "
         "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'ketamine_clinic.web.settings'); "
         "django.setup(); from django.conf import settings; "
         "print(settings.SECURE_PROXY_SSL_HEADER)"],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_forwarded_proto_is_trusted_only_behind_a_configured_proxy(tmp_path: Path) -> None:
    assert _proxy_header({}, tmp_path) == "None"
    trusted = _proxy_header({"KETAMINE_CLINIC_BEHIND_PROXY": "1"}, tmp_path)
    assert "HTTP_X_FORWARDED_PROTO" in trusted


def test_pages_carry_a_content_security_policy(cast: Any, client: Client) -> None:
    client.force_login(cast.bob)
    page = client.get(reverse("patient_detail", args=[cast.ana.pk]))
    enforced = dict(d.strip().split(" ", 1) for d in
                    page["Content-Security-Policy"].split(";"))
    assert enforced["default-src"] == "'self'"
    assert enforced["script-src"].split()[0] == "'self'"  # no other origin's script
    assert "http" not in enforced["script-src"]
    assert "*" not in enforced["script-src"]
    assert enforced["object-src"] == "'none'"
    assert enforced["frame-ancestors"] == "'none'"
    assert enforced["form-action"] == "'self'"
    strict = dict(d.strip().split(" ", 1) for d in
                  page["Content-Security-Policy-Report-Only"].split(";"))
    assert strict["script-src"] == "'self'"
    assert 'src="/static/js/app.js"' in page.content.decode()  # the page script is a file
