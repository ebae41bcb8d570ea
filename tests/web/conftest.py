"""Fixtures for the tests that start the real commands in a process of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def command_env() -> dict[str, str]:
    """The environment for a command run as a subprocess: the embedded database in its own
    data folder, whatever database the suite itself runs on."""
    return {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE",
                         "KETAMINE_CLINIC_DATA_DIR")}


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("migrated") / "data"
    out = subprocess.run(
        [sys.executable, "-m", "ketamine_clinic.cli", "migrate", "--data-dir", str(folder)],
        env=command_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return folder


@pytest.fixture
def migrated_data(_migrated_template: Path, tmp_path: Path) -> Path:
    """A data folder as ``ketamine-clinic migrate`` leaves it (database, keys, static and
    vendor files), copied for this test from one made once per run: the tests that serve it
    need a migrated folder, and only the test of ``migrate`` itself needs to watch it made."""
    return Path(shutil.copytree(_migrated_template, tmp_path / "data"))
