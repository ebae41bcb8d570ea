"""Django settings: one file, read from the environment through the helpers of
``web/env.py``, which refuse a value they cannot read and name the variable (the README
lists every variable). Importing the settings writes nothing: the data folder and its keys
are made by the commands that start Django.

Defaults are safe and local: SQLite in a data folder, the app on 127.0.0.1.
``DATABASE_URL`` switches to PostgreSQL; ``KETAMINE_CLINIC_ENV=production`` turns on the
HTTPS-only settings that ``manage.py check --deploy`` asks for.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from whitenoise.compress import Compressor

from ketamine_clinic.web.env import (
    AUDIT_KEY_VAR,
    SECRET_KEY_VAR,
    data_dir,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    key_files,
    read_key,
)

PACKAGE_DIR = Path(__file__).resolve().parent
# Made, with its keys, by the commands (``prepare_data_dir``); importing this writes nothing.
DATA_DIR = data_dir()
PRODUCTION = env_choice("KETAMINE_CLINIC_ENV", "local", ("local", "production")) == "production"

_keys = key_files(DATA_DIR)
SECRET_KEY = read_key(SECRET_KEY_VAR, _keys[SECRET_KEY_VAR])

# The audit trail's HMAC key (docs/audit.md). The database never holds it: keep it in the
# environment or in a file the database's administrator cannot read.
AUDIT_KEY = read_key(AUDIT_KEY_VAR, _keys[AUDIT_KEY_VAR]).encode()
# Checkpoints of the chain's head, outside the database (append-only file).
AUDIT_CHECKPOINTS = Path(env_str("KETAMINE_CLINIC_AUDIT_CHECKPOINTS",
                                 str(DATA_DIR / "audit-checkpoints.log")))
# Checkpoints of each site's controlled-substance ledger head, one append-only file per
# site in this folder (docs/stock.md), written by the worker with the audit checkpoints.
STOCK_CHECKPOINTS = Path(env_str("KETAMINE_CLINIC_STOCK_CHECKPOINTS",
                                 str(DATA_DIR / "stock-checkpoints")))
# What the worker's sealer runs every AUDIT_SEAL_SECONDS (the chains and their checkpoints
# outside the database), and what a restore tells that the chains were put back.
CHAIN_SEALERS = ["ketamine_clinic.web.audit.services.audit_seal",
                 "ketamine_clinic.web.stock.services.stock_checkpoint"]
CHAIN_RESTORED = ["ketamine_clinic.web.stock.services.stock_restored"]
# The worker seals new entries into the chain and writes a checkpoint this often.
AUDIT_SEAL_SECONDS = env_int("KETAMINE_CLINIC_AUDIT_SEAL_SECONDS", 5, minimum=1)
# Requests without a log-in (questionnaire links, failed log-ins) write at most this many
# entries per client address per clock hour, and all such addresses together at most the
# second figure; past either, one entry says that further ones were not recorded.
AUDIT_ANONYMOUS_PER_ADDRESS_PER_HOUR = env_int("KETAMINE_CLINIC_AUDIT_ANONYMOUS_PER_ADDRESS", 60,
                                               minimum=0)
AUDIT_ANONYMOUS_PER_HOUR = env_int("KETAMINE_CLINIC_AUDIT_ANONYMOUS_PER_HOUR", 2000, minimum=0)
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
    "ketamine_clinic.web.scheduling",
    "ketamine_clinic.web.staff",
    "ketamine_clinic.web.reminders",
    "ketamine_clinic.web.billing",
    "ketamine_clinic.web.stock",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "ketamine_clinic.web.lib.vendor.VendorWhiteNoiseMiddleware",  # whitenoise + /vendor/
    "ketamine_clinic.web.lib.middleware.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "ketamine_clinic.web.lib.middleware.SecurityHeadersMiddleware",
    "ketamine_clinic.web.staff.middleware.PasswordChangeRequired",
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
    # A bedside write reads and decides before it begins (sessions/services.py), so the
    # lock is held only for its few inserts.
    # WAL lets readers go on while one writer writes. synchronous=FULL, not NORMAL: in WAL
    # mode NORMAL does not sync the log at each commit, so a power cut or an operating
    # system crash can take back the last commits after the client was told they were
    # stored (a monitor that got its 201 does not send the vital signs again). The file
    # stays consistent either way; only FULL keeps what was acknowledged (no data loss).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    # Connections are kept (DB_CONN_MAX_AGE) as on PostgreSQL: opening one runs the
    # PRAGMAs and Django's function registrations, and closing the last connection to a
    # WAL database checkpoints the log into the file and deletes it (a sync with
    # synchronous=FULL), which every request paid when the connection was closed after it.
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "") or None}
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
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Content-hashed names (app.3f2a….css), Brotli and gzip copies, cached for a year by
    # whitenoise; `collectstatic` (in `ketamine-clinic migrate`/`demo`, and once per test
    # run in tests/conftest.py) writes them and the manifest the {% static %} tag reads.
    "staticfiles": {"BACKEND": "ketamine_clinic.web.lib.compression.CompressedStaticStorage"},
}
# Source maps are fetched only by a browser's developer tools: not worth compressing.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
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
# A token's "last used" time is written again only when the stored one is at least this
# many seconds old (0: at every request). The column tells an administrator whether a
# token is still in use, to the minute; writing it at every request made every API read
# a database write (on SQLite, the whole database's write lock and a sync to disk).
API_TOKEN_LAST_USED_SECONDS = env_int("KETAMINE_CLINIC_API_TOKEN_LAST_USED_SECONDS", 60,
                                      minimum=0)

# PK/PD work one request may ask for (docs/api.md). A population run
# of more than PK_SYNC_MAX_WORK patients × times becomes a background job; more than
# PK_JOB_MAX_WORK is refused.
PK_MAX_TIMES = env_int("KETAMINE_CLINIC_PK_MAX_TIMES", 2_000)
PK_MAX_SEGMENTS = env_int("KETAMINE_CLINIC_PK_MAX_SEGMENTS", 200)
PK_MAX_PERCENTILES = env_int("KETAMINE_CLINIC_PK_MAX_PERCENTILES", 20)
PK_MAX_POPULATION = env_int("KETAMINE_CLINIC_PK_MAX_POPULATION", 100_000)
PK_SYNC_MAX_WORK = env_int("KETAMINE_CLINIC_PK_SYNC_MAX_WORK", 1_000_000)
PK_JOB_MAX_WORK = env_int("KETAMINE_CLINIC_PK_JOB_MAX_WORK", 20_000_000)

# API input bounds (web/lib/api_input.py): no string in a request may be longer.
API_MAX_STRING_CHARS = env_int("KETAMINE_CLINIC_API_MAX_STRING_CHARS", 100_000)
# Rows per page of a list endpoint, and the largest offset a list accepts.
API_MAX_PAGE_SIZE = env_int("KETAMINE_CLINIC_API_MAX_PAGE_SIZE", 200)
API_MAX_OFFSET = env_int("KETAMINE_CLINIC_API_MAX_OFFSET", 1_000_000)

# Booking grid of the calendar and of the free slots it offers [min] (an operational
# setting, not a clinical one: a visit's length comes from its order and protocol).
SCHEDULING_SLOT_MINUTES = env_int("KETAMINE_CLINIC_SLOT_MINUTES", 15)

# Reminders (docs/reminders.md): email through Django's mail backends (console locally,
# SMTP when EMAIL_HOST is set), SMS through a pluggable backend class; links in messages
# start with the public address of the app.
EMAIL_BACKEND = env_str("KETAMINE_CLINIC_EMAIL_BACKEND",
                        "django.core.mail.backends.smtp.EmailBackend"
                        if env_str("EMAIL_HOST", "") else
                        "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("KETAMINE_CLINIC_FROM_EMAIL", "reminders@clinic.invalid")
SMS_BACKEND = env_str("KETAMINE_CLINIC_SMS_BACKEND",
                      "ketamine_clinic.web.reminders.sms.ConsoleSmsBackend")
# The SMS provider's inbound webhook (STOP replies) must send this in X-Webhook-Secret;
# without it set, the webhook is off.
SMS_WEBHOOK_SECRET = env_str("KETAMINE_CLINIC_SMS_WEBHOOK_SECRET", "")
PUBLIC_BASE_URL = env_str("KETAMINE_CLINIC_BASE_URL", "http://127.0.0.1:8000")

# FHIR bulk export files are kept this many hours, then deleted (docs/fhir.md).
FHIR_EXPORT_HOURS = env_int("KETAMINE_CLINIC_FHIR_EXPORT_HOURS", 24)

CLINIC_NAME = env_str("KETAMINE_CLINIC_NAME", "Front Range Pain & Ketamine Clinic")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # No query strings (search terms) or tokens (questionnaire links) in any log line.
    "filters": {"redact": {"()": "ketamine_clinic.web.lib.logs.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_choice(
        "KETAMINE_CLINIC_LOG_LEVEL", "WARNING", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))},
}
