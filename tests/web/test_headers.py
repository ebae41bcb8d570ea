"""Issue 13, finding 14: response headers, the API docs behind log-in and offline, and the
forwarded-protocol header trusted only behind a configured proxy."""

from __future__ import annotations

import os
import re
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
    assert re.search(r'src="/static/ninja/swagger-ui-bundle\.[0-9a-f]{12}\.js"', docs)
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
    assert enforced["script-src"] == "'self'"  # no inline script, handler or eval
    assert "Content-Security-Policy-Report-Only" not in page
    # The page script is a file (under its content-hashed name).
    assert re.search(r'src="/static/js/app\.[0-9a-f]{12}\.js" defer', page.content.decode())


# What the enforced policy refuses, as it appears in markup: an inline script (a <script>
# without src that is not a JSON data block), an event-handler attribute, an htmx trigger
# filter or hx-on attribute (both evaluated as code), a javascript: URL.
_INLINE_CODE = (
    re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I),
    re.compile(r"hx-trigger=\"[^\"]*\[", re.I),
    re.compile(r"\shx-on[:-]", re.I),
    re.compile(r"javascript:", re.I),
)


def test_no_template_or_view_carries_code_the_policy_would_refuse() -> None:
    web = ROOT / "src" / "ketamine_clinic" / "web"
    files = [p for p in web.rglob("*") if p.suffix in {".html", ".py"}
             and "migrations" not in p.parts]
    assert any(p.name == "session_detail.html" for p in files)
    found = [f"{p.relative_to(web)}: {m.group(0)}" for p in files
             for pattern in _INLINE_CODE for m in pattern.finditer(p.read_text())]
    assert found == []


def test_the_scan_finds_what_it_looks_for() -> None:
    caught = ['<script>alert(1)</script>', '<button onclick="window.print()">',
              '<div hx-trigger="every 5s [ok()]">', '<a hx-on:click="x()">',
              '<a href="javascript:x()">']
    for text in caught:
        assert any(p.search(text) for p in _INLINE_CODE), text
    for text in ['<script src="/static/js/app.js"></script>',
                 '<script type="application/json" id="d">{}</script>',
                 '<button data-print>', '<div hx-trigger="every 15s">']:
        assert not any(p.search(text) for p in _INLINE_CODE), text
