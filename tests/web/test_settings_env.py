"""The settings' environment: a bad value is refused with the variable's name, importing
the settings writes nothing, and the README documents every variable the code reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from ketamine_clinic.web.env import (
    AUDIT_KEY_VAR,
    SECRET_KEY_VAR,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    key_files,
    prepare_data_dir,
    read_key,
)

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ketamine_clinic"


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", True), ("true", True), ("Yes", True), (" on ", True),
    ("0", False), ("false", False), ("NO", False), ("off", False),
])
def test_a_boolean_takes_the_usual_words(monkeypatch: pytest.MonkeyPatch, raw: str,
                                         expected: bool) -> None:
    monkeypatch.setenv("KC_TEST_FLAG", raw)
    assert env_bool("KC_TEST_FLAG", not expected) is expected


@pytest.mark.parametrize("raw", ["ture", "y", "2", "enabled", "nope"])
def test_a_typo_in_a_boolean_is_an_error_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("KC_TEST_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match=f"KC_TEST_FLAG='{raw}' is neither yes"):
        env_bool("KC_TEST_FLAG", False)


def test_unset_or_empty_takes_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KC_TEST_VALUE", raising=False)
    assert env_bool("KC_TEST_VALUE", True) is True
    assert env_int("KC_TEST_VALUE", 7) == 7
    assert env_str("KC_TEST_VALUE", "x") == "x"
    monkeypatch.setenv("KC_TEST_VALUE", "  ")
    assert env_bool("KC_TEST_VALUE", False) is False
    assert env_int("KC_TEST_VALUE", 7) == 7
    assert env_list("KC_TEST_VALUE", "a, b,,") == ["a", "b"]


@pytest.mark.parametrize("raw", ["5s", "five", "1.5", "0x10"])
def test_a_number_that_is_not_one_is_an_error_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("KC_TEST_SECONDS", raw)
    with pytest.raises(ImproperlyConfigured, match=r"KC_TEST_SECONDS=.* is not a whole number"):
        env_int("KC_TEST_SECONDS", 5)


def test_a_number_below_its_least_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KC_TEST_SECONDS", "0")
    with pytest.raises(ImproperlyConfigured, match="KC_TEST_SECONDS=0 is below"):
        env_int("KC_TEST_SECONDS", 5, minimum=1)
    monkeypatch.setenv("KC_TEST_SECONDS", "1_000")
    assert env_int("KC_TEST_SECONDS", 5, minimum=1) == 1000


def test_a_choice_outside_its_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KC_TEST_ENV", "prod")
    with pytest.raises(ImproperlyConfigured, match="KC_TEST_ENV='prod' is not one of"):
        env_choice("KC_TEST_ENV", "local", ("local", "production"))


def _import_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("KETAMINE_CLINIC_", "DATABASE_URL", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-c",
         "import ketamine_clinic.web.settings as s; print(len(s.SECRET_KEY))"],
        env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_importing_the_settings_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = _import_settings({"KETAMINE_CLINIC_DATA_DIR": str(data)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"  # no key yet: nothing made one
    assert not data.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_typo_in_the_environment_stops_the_settings(tmp_path: Path) -> None:
    out = _import_settings({"KETAMINE_CLINIC_DATA_DIR": str(tmp_path),
                            "KETAMINE_CLINIC_DEBUG": "ture"})
    assert out.returncode != 0
    assert "KETAMINE_CLINIC_DEBUG='ture' is neither yes nor no" in out.stderr
    out = _import_settings({"KETAMINE_CLINIC_DATA_DIR": str(tmp_path),
                            "KETAMINE_CLINIC_ENV": "prod"})
    assert "KETAMINE_CLINIC_ENV='prod' is not one of local, production" in out.stderr


KEPT = r"""
import django
from django.core.signals import request_finished, request_started
from django.db import connection
django.setup()
request_started.send(sender=None)
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
first = connection.connection
request_finished.send(sender=None)
request_started.send(sender=None)
print(first is not None and connection.connection is first)
"""


def test_a_sqlite_connection_is_kept_from_one_request_to_the_next(tmp_path: Path) -> None:
    """Closing the last connection to a WAL database checkpoints and deletes the log (a
    sync), and opening one runs the PRAGMAs again: a request should not pay for either."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("KETAMINE_CLINIC_", "DATABASE_URL", "DJANGO_"))}
    out = subprocess.run([sys.executable, "-c", KEPT], capture_output=True, text=True,
                         timeout=120,
                         env={**clean, "KETAMINE_CLINIC_DATA_DIR": str(tmp_path),
                              "KETAMINE_CLINIC_SECRET_KEY": "s" * 64,
                              "KETAMINE_CLINIC_AUDIT_KEY": "a" * 64,
                              "DJANGO_SETTINGS_MODULE": "ketamine_clinic.web.settings"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_the_data_folder_and_its_keys_are_made_once_and_kept_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_VAR, raising=False)
    monkeypatch.delenv(AUDIT_KEY_VAR, raising=False)
    monkeypatch.delenv("KETAMINE_CLINIC_AUDIT_KEY_FILE", raising=False)
    data = tmp_path / "data"
    prepare_data_dir(data)
    files = key_files(data)
    keys = {name: read_key(name, path) for name, path in files.items()}
    assert all(len(key) >= 64 for key in keys.values())
    assert keys[SECRET_KEY_VAR] != keys[AUDIT_KEY_VAR]
    assert data.stat().st_mode & 0o777 == 0o700
    for path in files.values():
        assert path.stat().st_mode & 0o077 == 0
    prepare_data_dir(data)  # a second start keeps them
    assert {name: read_key(name, path) for name, path in files.items()} == keys
    assert (data / "static").is_dir()


def test_processes_starting_at_once_all_read_the_one_whole_key_that_was_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many processes preparing one new data folder at the same moment (as CI's two test
    runs, or a server and its worker, do) each read back the same complete keys, and leave
    no draft files behind."""
    monkeypatch.delenv(SECRET_KEY_VAR, raising=False)
    monkeypatch.delenv(AUDIT_KEY_VAR, raising=False)
    monkeypatch.delenv("KETAMINE_CLINIC_AUDIT_KEY_FILE", raising=False)
    data = tmp_path / "data"
    script = (
        "import sys; from pathlib import Path;"
        "from ketamine_clinic.web.env import key_files, prepare_data_dir, read_key;"
        "files = key_files(prepare_data_dir(Path(sys.argv[1])));"
        "print(','.join(read_key(name, path) for name, path in sorted(files.items())))"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in (SECRET_KEY_VAR, AUDIT_KEY_VAR, "KETAMINE_CLINIC_AUDIT_KEY_FILE")}
    runs = [subprocess.Popen([sys.executable, "-c", script, str(data)], env=env,
                             stdout=subprocess.PIPE, text=True) for _ in range(8)]
    seen = {run.communicate()[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(seen) == 1
    assert all(len(key) >= 64 for key in seen.pop().split(","))
    assert sorted(p.name for p in data.iterdir() if p.name.startswith(".")) == []


def test_a_key_in_the_environment_is_not_written_to_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_VAR, "k" * 60)
    monkeypatch.setenv(AUDIT_KEY_VAR, "a" * 60)
    prepare_data_dir(tmp_path)
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "audit_key").exists()
    assert read_key(SECRET_KEY_VAR, tmp_path / "secret_key") == "k" * 60


def _variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    settings_text = (SRC / "web" / "settings.py").read_text()
    names |= set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', settings_text))
    env_text = (SRC / "web" / "env.py").read_text()
    names |= set(re.findall(r'^[A-Z_]+_VAR = "([A-Z][A-Z0-9_]+)"', env_text, re.MULTILINE))
    for path in SRC.rglob("*.py"):
        names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', path.read_text()))
    return names - {"DJANGO_SETTINGS_MODULE"}


def test_the_readme_documents_every_variable_the_code_reads() -> None:
    names = _variables_read_by_the_code()
    assert {"KETAMINE_CLINIC_DEBUG", "KETAMINE_CLINIC_SECRET_KEY", "DATABASE_URL",
            "KETAMINE_CLINIC_PASSWORD"} <= names  # the scan finds them
    readme = (ROOT / "README.md").read_text()
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert missing == []
