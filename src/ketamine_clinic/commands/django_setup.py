"""Starting Django from a command: the ``--data-dir`` option, settings and setup, and the
migrate-and-collect step. Every command that touches the database goes through here, so
the commands' modules do not import one another for it."""

from __future__ import annotations

# Lazy imports: Django is imported after the settings module and data folder are set,
# and only by the commands that need it.
import argparse
import os
from pathlib import Path


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None,
        help="folder for the SQLite database, secret key and static files "
        "(default: ./data; ignored for the database when DATABASE_URL is set)",
    )


def setup_django(data_dir: Path | None) -> None:
    """Point the settings at ``data_dir``, make the folder and its keys if they are missing,
    and start Django. Call before importing models."""
    if data_dir is not None:
        os.environ["KETAMINE_CLINIC_DATA_DIR"] = str(data_dir.resolve())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketamine_clinic.web.settings")
    from ketamine_clinic.web.env import prepare_data_dir

    prepare_data_dir()  # the data folder and its keys, made on first use (settings write none)
    import django

    django.setup()


def prepare(data_dir: Path | None, *, verbose: bool = True, pages: bool = True) -> None:
    """Start Django over ``data_dir`` and apply migrations; with ``pages`` (the commands that
    serve them) also collect the static and vendor files, which a command that only writes
    to the database does not need."""
    setup_django(data_dir)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    if pages:
        call_command("collectstatic", interactive=False, verbosity=0)
        from ketamine_clinic.web.lib.vendor import prepare_vendor_files

        prepare_vendor_files()
    if verbose:
        from django.conf import settings

        db = settings.DATABASES["default"]
        where = db["NAME"] if "sqlite" in db["ENGINE"] else f"{db['ENGINE']} {db['NAME']}"
        print(f"Database ready: {where}")
