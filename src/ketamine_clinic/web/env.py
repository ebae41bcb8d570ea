"""Reading the settings' environment variables, and the data folder's keys.

Each helper refuses a value it cannot read and names the variable, so a typo
(``KETAMINE_CLINIC_DEBUG=ture``, ``..._SEAL_SECONDS=5s``) stops the app at start-up instead
of silently becoming a default. An unset or empty variable takes the default.

Importing the settings writes nothing: the data folder and its keys are made by
:func:`prepare_data_dir`, which every command that starts Django calls first (``demo``,
``serve``, ``worker``, ``migrate``...). The README lists every variable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

SECRET_KEY_VAR = "KETAMINE_CLINIC_SECRET_KEY"
AUDIT_KEY_VAR = "KETAMINE_CLINIC_AUDIT_KEY"
AUDIT_KEY_FILE_VAR = "KETAMINE_CLINIC_AUDIT_KEY_FILE"
DATA_DIR_VAR = "KETAMINE_CLINIC_DATA_DIR"


def _raw(name: str) -> str | None:
    """The variable's value, or None when it is unset or empty."""
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a whole number; set it to one (for example "
            f"{default}) or unset it for the default {default}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below its least value {minimum}")
    return number


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is neither yes nor no: use one of {', '.join(TRUE_WORDS)} or "
        f"{', '.join(FALSE_WORDS)}, or unset it for the default "
        f"{'yes' if default else 'no'}")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).strip()
    if value not in choices:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated list (blank items dropped)."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def data_dir() -> Path:
    """The folder for the SQLite database, the keys and the static files."""
    return Path(env_str(DATA_DIR_VAR, str(Path.cwd() / "data"))).resolve()


def key_files(folder: Path | None = None) -> dict[str, Path]:
    """Each key's variable and the file that holds it when the variable is not set."""
    folder = data_dir() if folder is None else folder
    return {
        SECRET_KEY_VAR: folder / "secret_key",
        AUDIT_KEY_VAR: Path(env_str(AUDIT_KEY_FILE_VAR, str(folder / "audit_key"))),
    }


def read_key(name: str, key_file: Path) -> str:
    """The key from the environment, else from ``key_file``; "" when neither has one (the
    settings then hold no key, and whatever needs it refuses to work)."""
    value = _raw(name)
    if value is not None:
        return value
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        return ""


def prepare_data_dir(folder: Path | None = None) -> Path:
    """Make the data folder (readable by the service user only), its static folder, and
    each key that neither the environment nor a file gives yet. Returns the folder."""
    folder = data_dir() if folder is None else folder
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)
    (folder / "static").mkdir(exist_ok=True)  # whitenoise warns when it is missing
    for name, key_file in key_files(folder).items():
        if _raw(name) is not None or key_file.exists():
            continue
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_whole(key_file, secrets.token_urlsafe(64))
    return folder


def _create_whole(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, unless it exists. Two processes starting at once (the
    server and its worker, or two test runs) never see a half-written file: the text is
    written to a private file first and then linked under its name in one step, which fails
    if the other process got there first."""
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(draft, path)
    finally:
        os.unlink(draft)
