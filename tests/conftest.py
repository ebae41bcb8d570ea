"""Shared fixtures: the named cast of fictional people every web test uses.

- Alice, physician at Denver and Boulder
- Bob, nurse at Denver
- Carol, front desk at Denver
- Dave, clinic administrator at Denver
- Erin, auditor at Denver
- Oscar, nurse at Boulder only: must see nothing of Denver's patients
- Ana Ruiz, a Denver patient; Zed Okafor, a Boulder patient
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# One hypothesis profile for the whole suite, chosen here and not by whichever test module
# is imported first: no deadline (a shared 2-core machine makes timings noisy), and
# hypothesis' default number of examples. HYPOTHESIS_PROFILE picks another registered one.
hypothesis_settings.register_profile("ketamine-clinic", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ketamine-clinic"))


def pytest_configure(config: pytest.Config) -> None:
    """The settings read the keys when pytest-django imports them, before this file: on a
    fresh checkout there are none yet, so make the data folder and its keys (as every
    command does) and hand them to the already-loaded settings."""
    from django.conf import settings

    from ketamine_clinic.web.env import (
        AUDIT_KEY_VAR,
        SECRET_KEY_VAR,
        key_files,
        prepare_data_dir,
        read_key,
    )

    keys = key_files(prepare_data_dir(settings.DATA_DIR))
    # What the settings read, or would have read had the files been there.
    settings.SECRET_KEY = read_key(SECRET_KEY_VAR, keys[SECRET_KEY_VAR])
    settings.AUDIT_KEY = read_key(AUDIT_KEY_VAR, keys[AUDIT_KEY_VAR]).encode()
    _collect_static(settings)


def _collect_static(settings: Any) -> None:
    """The pages name their static files by content hash from the manifest collectstatic
    writes (as `ketamine-clinic migrate` does at deploy): collect them once per test process
    into a folder of its own (xdist workers do not write over one another's)."""
    import tempfile
    from pathlib import Path

    from django.core.management import call_command

    settings.STATIC_ROOT = Path(tempfile.mkdtemp(prefix="ketamine-clinic-static-"))
    call_command("collectstatic", interactive=False, verbosity=0)
    # The live server (pytest-django wraps it in Django's StaticFilesHandler, which serves
    # the finders' unhashed names only) answers /static/ through the app's whitenoise, as
    # `ketamine-clinic serve` does: hashed names, compressed, cached for a year.
    from django.contrib.staticfiles import handlers

    handlers.StaticFilesHandler = _through_the_app  # type: ignore[assignment,misc]


def _through_the_app(application: Any) -> Any:
    return application


@dataclass
class Cast:
    denver: Any
    boulder: Any
    alice: Any
    bob: Any
    carol: Any
    dave: Any
    erin: Any
    oscar: Any
    ana: Any
    zed: Any

    def by_role(self) -> dict[str, Any]:
        return {"physician": self.alice, "nurse": self.bob, "front_desk": self.carol,
                "clinic_admin": self.dave, "auditor": self.erin}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None,
                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """On SQLite, test in a database file rather than in memory.

    Django shares one in-memory connection between the test and every request thread of
    the live server, so two requests served at once interleave their transactions on it
    (issue 20: two audit entries took the same sequence number). With a file each thread
    has a connection of its own and SQLite's write lock orders them, as in production.
    Each xdist worker has its own temporary folder, hence its own file.
    """
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3" and not db.get("TEST", {}).get("NAME"):
        db.setdefault("TEST", {})["NAME"] = str(
            tmp_path_factory.mktemp("sqlite") / "test-ketamine-clinic.sqlite3")


@pytest.fixture
def cast(db: Any) -> Cast:
    return make_cast()


def make_cast() -> Cast:
    """The cast in the database (the ``cast`` fixture; a world built once per module calls
    it inside its own transaction, see ``tests/web/access.py``)."""
    from ketamine_clinic.web.accounts.models import Site, User
    from ketamine_clinic.web.audit.services import Actor
    from ketamine_clinic.web.patients import services

    denver = Site.objects.create(code="denver", name="Denver")
    boulder = Site.objects.create(code="boulder", name="Boulder")

    def staff(username: str, role: str, *sites: Any) -> Any:
        # No password: hashing with Argon2 for every test would be slow; tests log in
        # with force_login, and the login tests set a password themselves.
        user = User.objects.create_user(username=username, password=None, role=role,
                                        first_name=username.capitalize())
        user.sites.set(sites)
        return user

    alice = staff("alice", "physician", denver, boulder)
    bob = staff("bob", "nurse", denver)
    carol = staff("carol", "front_desk", denver)
    dave = staff("dave", "clinic_admin", denver)
    erin = staff("erin", "auditor", denver)
    oscar = staff("oscar", "nurse", boulder)
    actor = Actor(user=carol, client_address="127.0.0.1")
    ana = services.patient_register(
        actor=actor, site=denver, mrn="DEN-1", given_name="Ana", family_name="Ruiz",
        date_of_birth=date.today() - timedelta(days=40 * 365), sex_at_birth="female",
        escort_name="Luis Ruiz")
    zed = services.patient_register(
        actor=Actor(user=alice), site=boulder, mrn="BOU-1", given_name="Zed",
        family_name="Okafor", date_of_birth=date(1970, 5, 1), sex_at_birth="male")
    return Cast(denver, boulder, alice, bob, carol, dave, erin, oscar, ana, zed)


@pytest.fixture(autouse=True)
def _audit_triggers(request: pytest.FixtureRequest) -> Any:
    """Keep the audit trail's append-only triggers in place for every database test, and
    give each test a checkpoint file of its own (the database is new for each test).

    Transactional tests (live server, browser) end with a flush that deletes every row
    (TRUNCATE on PostgreSQL); the triggers refuse both, so they come off just before.
    """
    names = request.fixturenames
    if "transactional_db" in names or "live_server" in names:
        request.getfixturevalue("transactional_db")
        transactional = True
    elif "db" in names or "cast" in names:
        request.getfixturevalue("db")
        transactional = False
    else:
        yield
        return
    from django.db import connection

    from ketamine_clinic.web.audit.triggers import install_triggers, remove_triggers
    from ketamine_clinic.web.stock import triggers as stock_triggers

    settings = request.getfixturevalue("settings")
    settings.AUDIT_CHECKPOINTS = request.getfixturevalue("tmp_path") / "audit-checkpoints.log"
    settings.STOCK_CHECKPOINTS = request.getfixturevalue("tmp_path") / "stock-checkpoints"
    install_triggers(connection)
    stock_triggers.install_triggers(connection)
    yield
    if transactional:
        remove_triggers(connection)
        stock_triggers.remove_triggers(connection)


@pytest.fixture
def run_jobs(transactional_db: Any) -> Any:
    """Run the background jobs that are due, through the real database worker (the queue
    rows this test's services wrote, django-tasks-db's worker loop, in this process).

    The test runs with real commits (``transactional_db``), as the app does: the worker
    reads only committed jobs, and it closes a connection left inside a transaction."""
    from ketamine_clinic.web.lib.jobs import run_due_jobs

    return run_due_jobs
