"""A fresh database for a benchmark's child processes (shared by the bench_* scripts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def fresh_database(backend: str, name: str) -> Iterator[dict[str, str]]:
    """The environment for child processes that work on an empty database: a temporary
    SQLite data folder, or the PostgreSQL database ``name`` on 127.0.0.1 as user postgres
    (made with ``createdb``). Both are removed afterwards."""
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    tmp = tempfile.mkdtemp(prefix=f"{name}-")
    env["KETAMINE_CLINIC_DATA_DIR"] = tmp
    pg = ["-h", "127.0.0.1", "-U", "postgres", name]
    if backend == "postgres":
        subprocess.run(["dropdb", "--if-exists", *pg], check=True)
        subprocess.run(["createdb", *pg], check=True)
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    try:
        yield env
    finally:
        if backend == "postgres":
            subprocess.run(["dropdb", "--if-exists", *pg], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def kept_database(backend: str, name: str, data_dir: str) -> dict[str, str]:
    """The environment for child processes that work on a database kept between runs: the
    SQLite data folder ``data_dir``, or the PostgreSQL database ``name`` on 127.0.0.1 as
    user postgres (made with ``createdb`` if it is missing). Nothing is removed; what a run
    loaded there is the caller's to record."""
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    os.makedirs(data_dir, exist_ok=True)
    env["KETAMINE_CLINIC_DATA_DIR"] = data_dir
    if backend == "postgres":
        pg = ["-h", "127.0.0.1", "-U", "postgres"]
        listed = subprocess.run(["psql", *pg, "-Atc", "SELECT datname FROM pg_database"],
                                check=True, stdout=subprocess.PIPE, text=True).stdout
        if name not in listed.split():
            subprocess.run(["createdb", *pg, name], check=True)
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    return env
