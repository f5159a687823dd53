"""Reading configuration from the environment (framework-free, so settings stay declarative)."""

import os
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in _TRUE


def email_settings(url: str) -> dict:
    """Django email settings for an EMAIL_URL.

    - ``outbox`` (default): messages are stored in the database and shown on the Outbox page.
    - ``smtp://[user:password@]host:port`` plain SMTP (``?tls=1`` for STARTTLS),
      ``smtps://...`` SMTP over TLS.
    - ``console`` prints messages (development only).
    """
    if url in ("outbox", "outbox://"):
        return {"EMAIL_BACKEND": "pursuit.outreach.backends.OutboxBackend"}
    if url in ("console", "console://"):
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    parts = urlparse(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ImproperlyConfigured(
            f"EMAIL_URL must be outbox, console, smtp://... or smtps://..., not {url!r}"
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": parts.scheme == "smtps",
        "EMAIL_USE_TLS": query.get("tls", "0").lower() in _TRUE,
        "EMAIL_TIMEOUT": int(query.get("timeout", "20")),
    }
