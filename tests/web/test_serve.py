"""`ketamine-clinic serve` runs the app under gunicorn, not Django's development server; it
migrates nothing (that is `ketamine-clinic migrate`, the deploy step)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.web.conftest import command_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_env = command_env


def test_serve_refuses_a_database_with_pending_migrations(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ketamine_clinic.cli", "serve", "--data-dir", str(tmp_path),
         "--port", str(free_port())], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "ketamine-clinic migrate" in out.stderr + out.stdout
    assert "Serving on" not in out.stdout


def test_serve_refuses_a_folder_whose_static_files_were_not_collected(
        migrated_data: Path) -> None:
    (migrated_data / "static" / "staticfiles.json").unlink()
    out = subprocess.run(
        [sys.executable, "-m", "ketamine_clinic.cli", "serve", "--data-dir", str(migrated_data),
         "--port", str(free_port())], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "static files" in out.stderr
    assert "ketamine-clinic migrate" in out.stderr
    assert "Serving on" not in out.stdout


def test_serve_answers_over_http_with_gunicorn_after_migrate(tmp_path: Path) -> None:
    port = free_port()
    env = _env()
    migrated = subprocess.run(
        [sys.executable, "-m", "ketamine_clinic.cli", "migrate", "--data-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Database ready" in migrated.stdout
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
        assert re.search(r'href="/static/css/app\.[0-9a-f]{12}\.css"', body)  # hashed name
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stopped_serve_leaves_no_listener_and_no_process(migrated_data: Path) -> None:
    """SIGTERM to `serve` (as a service manager or the end of `make demo` sends it) stops
    gunicorn with it: nothing is left listening on the port, no process of it is left."""
    port = free_port()
    env = _env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketamine_clinic.cli", "serve", "--data-dir", str(migrated_data),
         "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # its own process group: whatever it starts is found
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        assert _listening(port)
        proc.send_signal(signal.SIGTERM)  # to `serve` alone, not to its group
        assert proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(proc.pid)
        assert not _listening(port)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
