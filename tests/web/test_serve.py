"""`ketamine-clinic serve` runs the app under gunicorn, not Django's development server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_over_http_with_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketamine_clinic.cli", "serve", "--data-dir", str(tmp_path),
         "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body, server = "", ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as r:
                    body, server = r.read().decode(), r.headers.get("Server", "")
                break
            except OSError:
                time.sleep(0.3)
        assert "Log in" in body
        assert "gunicorn" in server.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
