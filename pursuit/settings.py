"""Pursuit settings, all from environment variables with safe defaults.

Every variable is documented in README.md ("Configuration").
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from pursuit.lib.config import email_settings, env_bool, env_str

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(env_str("PURSUIT_DATA_DIR", str(BASE_DIR.parent / "data")))

DEBUG = env_bool("PURSUIT_DEBUG", False)
SECRET_KEY = env_str("PURSUIT_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("PURSUIT_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("PURSUIT_SECRET_KEY must be set in production")
    # A fixed development key: fine for a laptop demo, never for a deployment (README says so).
    SECRET_KEY = "pursuit-insecure-development-key-set-PURSUIT_SECRET_KEY"

ALLOWED_HOSTS = [h.strip() for h in env_str("PURSUIT_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in env_str("PURSUIT_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]
BASE_URL = env_str("PURSUIT_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "pursuit.org",
    "pursuit.leads",
    "pursuit.intake",
    "pursuit.outreach",
    "pursuit.plans",
    "pursuit.work",
    "pursuit.compliance",
    "pursuit.texting",
    "pursuit.appointments",
    "pursuit.api",
    "pursuit.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pursuit.urls"
WSGI_APPLICATION = "pursuit.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pursuit.web.context.pursuit",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'pursuit.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web app read while the worker writes; IMMEDIATE transactions take the write
    # lock up front, so two writers queue on `timeout` instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that worker processes started by the tests share the test database.
    # Named per process so that two test runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-pursuit-{os.getpid()}.sqlite3")}
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "org.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "leads"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"  # filled by `pursuit collectstatic` in a deployment
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve the apps' static files straight from the package, so nothing needs collecting first.
WHITENOISE_USE_FINDERS = True
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
except OSError:
    pass

vars().update(email_settings(env_str("EMAIL_URL", "outbox")))
DEFAULT_FROM_EMAIL = env_str("PURSUIT_FROM_EMAIL", "pursuit@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The text provider: "outbox" (nothing leaves) or twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com
# (see pursuit/texting/provider.py).
TEXT_URL = env_str("TEXT_URL", "outbox")
# Customer replies (pursuit/outreach/inbound.py): the address replies go to (plus-addressed per
# lead), the inbound-mail webhook's signing key (Mailgun), and a mailbox to poll.
PURSUIT_REPLY_ADDRESS = env_str("PURSUIT_REPLY_ADDRESS", "")
PURSUIT_MAILGUN_SIGNING_KEY = env_str("PURSUIT_MAILGUN_SIGNING_KEY", "")
PURSUIT_IMAP_URL = env_str("PURSUIT_IMAP_URL", "")

# Intake limits: a lead provider sending more than this gets 413, never a crash.
PURSUIT_MAX_ADF_BYTES = int(env_str("PURSUIT_MAX_ADF_BYTES", str(1024 * 1024)))
PURSUIT_MAX_EMAIL_BYTES = int(env_str("PURSUIT_MAX_EMAIL_BYTES", str(10 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = max(PURSUIT_MAX_ADF_BYTES, PURSUIT_MAX_EMAIL_BYTES) + 1024

# Worker timing.
PURSUIT_WORKER_POLL_SECONDS = float(env_str("PURSUIT_WORKER_POLL_SECONDS", "0.1"))
PURSUIT_WORKER_LEASE_SECONDS = int(env_str("PURSUIT_WORKER_LEASE_SECONDS", "120"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("PURSUIT_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
