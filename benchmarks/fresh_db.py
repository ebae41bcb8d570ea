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
