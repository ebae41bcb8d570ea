"""Django settings: one file, read from the environment through small typed helpers.

Defaults are safe and local: SQLite in a data folder, the app on 127.0.0.1.
``DATABASE_URL`` switches to PostgreSQL; ``KETAMINE_CLINIC_ENV=production`` turns on the
HTTPS-only settings that ``manage.py check --deploy`` asks for.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(env_str("KETAMINE_CLINIC_DATA_DIR", str(Path.cwd() / "data"))).resolve()
PRODUCTION = env_str("KETAMINE_CLINIC_ENV", "local") == "production"


def _secret_key() -> str:
    """The key from the environment, else one generated once and kept in the data folder."""
    from_env = os.environ.get("KETAMINE_CLINIC_SECRET_KEY")
    if from_env:
        return from_env
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("KETAMINE_CLINIC_DEBUG", False)
ALLOWED_HOSTS = env_list("KETAMINE_CLINIC_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "ninja",  # its bundled Swagger UI assets: the API docs page works offline
    "ketamine_clinic.web.lib",
    "ketamine_clinic.web.accounts",
    "ketamine_clinic.web.audit",
    "ketamine_clinic.web.patients",
    "ketamine_clinic.web.protocols",
    "ketamine_clinic.web.orders",
    "ketamine_clinic.web.sessions",
    "ketamine_clinic.web.outcomes",
    "ketamine_clinic.web.simulation",
    "ketamine_clinic.web.documents",
    "ketamine_clinic.web.fhir",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ketamine_clinic.web.lib.middleware.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "ketamine_clinic.web.lib.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "ketamine_clinic.web.urls"
WSGI_APPLICATION = "ketamine_clinic.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ketamine_clinic.web.lib.context.clinic",
            ],
        },
    },
]

_default_db = f"sqlite:///{DATA_DIR / 'ketamine-clinic.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _default_db), conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions: a writer takes the lock when it begins, so two writers queue
    # instead of one failing to upgrade its read lock (the audit chain appends need this).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Automatic logoff after this many seconds without a request (15 minutes by default).
SESSION_COOKIE_AGE = env_int("KETAMINE_CLINIC_IDLE_LOGOUT_SECONDS", 15 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Login throttling (django-axes): lock the username+address pair after repeated failures.
AXES_FAILURE_LIMIT = env_int("KETAMINE_CLINIC_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("KETAMINE_CLINIC_LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = env_bool("KETAMINE_CLINIC_AXES_ENABLED", True)
# ...and lock an address after this many failures over all usernames (password spraying).
AXES_HANDLER = "ketamine_clinic.web.accounts.throttle.AddressThrottledHandler"
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("KETAMINE_CLINIC_LOGIN_ADDRESS_FAILURE_LIMIT", 20)

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("KETAMINE_CLINIC_SSL_REDIRECT", True)
    # X-Forwarded-Proto says whether the browser used HTTPS only when a proxy that sets it
    # (and strips a client's own) is in front: trust it only when one is configured.
    if env_bool("KETAMINE_CLINIC_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("KETAMINE_CLINIC_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env_list("KETAMINE_CLINIC_CSRF_TRUSTED_ORIGINS", "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("KETAMINE_CLINIC_TIME_ZONE", "America/Denver")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Background jobs: django-tasks (the API Django 6 adopted as django.tasks) with its
# database backend (django-tasks-db). The queue lives in the clinic's own database, so a
# job enqueued inside a transaction exists only if that transaction commits, on SQLite as
# on PostgreSQL. `ketamine-clinic worker` runs the jobs; docs/jobs.md says why this library.
TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]},
}

# API tokens expire: this many days by default, at most API_TOKEN_MAX_DAYS.
API_TOKEN_DAYS = env_int("KETAMINE_CLINIC_API_TOKEN_DAYS", 90)
API_TOKEN_MAX_DAYS = env_int("KETAMINE_CLINIC_API_TOKEN_MAX_DAYS", 365)

# API input bounds (web/lib/api_input.py): no string in a request may be longer.
API_MAX_STRING_CHARS = env_int("KETAMINE_CLINIC_API_MAX_STRING_CHARS", 100_000)
# Rows per page of a list endpoint, and the largest offset a list accepts.
API_MAX_PAGE_SIZE = env_int("KETAMINE_CLINIC_API_MAX_PAGE_SIZE", 200)
API_MAX_OFFSET = env_int("KETAMINE_CLINIC_API_MAX_OFFSET", 1_000_000)

# FHIR bulk export files are kept this many hours, then deleted (docs/fhir.md).
FHIR_EXPORT_HOURS = env_int("KETAMINE_CLINIC_FHIR_EXPORT_HOURS", 24)

CLINIC_NAME = env_str("KETAMINE_CLINIC_NAME", "Front Range Pain & Ketamine Clinic")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("KETAMINE_CLINIC_LOG_LEVEL", "WARNING")},
}
