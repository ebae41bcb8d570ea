"""No patient data or secrets in the logs, and a data folder only the service user can read
(issue 13, item 13)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config

from ketamine_clinic.web.lib.logs import RedactingLogger, RedactSecrets, redact
from tests.web.test_serve import _env, free_port

TOKEN = "kc_Zr8vQ2xLw0pN4mT7yB1cD5eF9gH3jK6"


def test_redaction_drops_query_strings_and_tokens_and_keeps_ids() -> None:
    assert redact("GET /patients/?q=Ruiz&dob=1985-02-03 HTTP/1.1") == "GET /patients/ HTTP/1.1"
    assert redact(f"/q/{TOKEN}/") == "/q/[redacted]/"
    assert redact(f"/api/v1/exports/{TOKEN}/file") == "/api/v1/exports/[redacted]/file"
    assert redact("/patients/42/sessions/2026-12-02/") == "/patients/42/sessions/2026-12-02/"


def test_the_access_log_line_holds_the_path_only() -> None:
    logger = RedactingLogger(Config())
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/q/{TOKEN}/?q=Ruiz",
               "PATH_INFO": f"/q/{TOKEN}/", "QUERY_STRING": "q=Ruiz",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.3",
               "HTTP_REFERER": "http://clinic/patients/?q=Ruiz"}
    atoms = logger.atoms(SimpleNamespace(status="200 OK", headers=[], sent=10),
                         SimpleNamespace(headers=[("AUTHORIZATION", f"Bearer {TOKEN}")]),
                         environ, timedelta(milliseconds=5))
    line = Config().access_log_format % logger.atoms_wrapper_class(atoms)
    assert "GET /q/[redacted]/ HTTP/1.1" in line
    assert "Ruiz" not in line
    assert TOKEN not in line


def test_django_log_lines_are_redacted() -> None:
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1,
                               "Not Found: %s", (f"/q/{TOKEN}/",), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "Not Found: /q/[redacted]/"


def test_the_served_app_logs_no_search_terms_or_tokens_and_keeps_its_files_private(
        migrated_data: Path) -> None:
    data = migrated_data
    env = _env()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketamine_clinic.cli", "serve", "--data-dir", str(data),
         "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # serve runs gunicorn as a child: stop the whole group
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        for path in ("/patients/?q=Ruiz&dob=1985-02-03", f"/q/{TOKEN}/"):
            # a redirect to log-in or a 404: the log line is what counts
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert '"GET /patients/ HTTP/1.1"' in out
    assert '"GET /q/[redacted]/ HTTP/1.1"' in out
    assert "Ruiz" not in out
    assert "1985-02-03" not in out
    assert TOKEN not in out
    assert data.stat().st_mode & 0o777 == 0o700
    for name in ("ketamine-clinic.sqlite3", "secret_key", "audit_key"):
        assert (data / name).stat().st_mode & 0o077 == 0, name
