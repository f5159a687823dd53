"""The text provider adapter: Twilio's Messages API and webhook signatures.

`TEXT_URL` chooses it:

- `outbox` (default): nothing leaves; texts are recorded as sent and shown in the app (a fresh
  install and the demo).
- `twilio://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com`: Twilio over HTTPS.
- `twilio+http://ACCOUNT_SID:AUTH_TOKEN@127.0.0.1:8099`: the same API over plain HTTP (a local
  stand-in, as the tests run one).

Sending is `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with `To`, `From`, `Body` and
`StatusCallback`, HTTP basic auth with the account id and token; the answer's `sid` is kept.
Inbound texts and delivery reports arrive as form posts signed with `X-Twilio-Signature`:
base64(HMAC-SHA1(auth token, the full URL + each POST parameter name and value, sorted by name)).

Only the standard library is used: the API surface is two calls and one signature, and Twilio's
own package would bring a large dependency for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class TextSendError(Exception):
    """The provider did not take the message; `permanent` when retrying cannot help (a number
    that cannot receive texts, a refused sender)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Provider:
    kind: str  # "outbox" | "twilio"
    base: str = ""
    account: str = ""
    token: str = ""


def text_provider(url: str | None = None) -> Provider:
    url = settings.TEXT_URL if url is None else url
    if url in ("", "outbox", "outbox://"):
        return Provider("outbox")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("twilio", "twilio+http") or not parts.username or not parts.password:
        raise ImproperlyConfigured(
            f"TEXT_URL must be outbox or twilio://ACCOUNT_SID:AUTH_TOKEN@host, not {url.split('@')[-1]!r}"
        )
    scheme = "http" if parts.scheme == "twilio+http" else "https"
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return Provider(
        "twilio",
        base=f"{scheme}://{host}",
        account=urllib.parse.unquote(parts.username),
        token=urllib.parse.unquote(parts.password),
    )


def provider_send(
    *, from_number: str, to: str, body: str, status_callback: str = "", timeout: float = 15
) -> str:
    """Hand one text to the provider; returns its message id."""
    provider = text_provider()
    if provider.kind == "outbox":
        return ""
    form = {"To": to, "From": from_number, "Body": body}
    if status_callback:
        form["StatusCallback"] = status_callback
    request = urllib.request.Request(
        f"{provider.base}/2010-04-01/Accounts/{urllib.parse.quote(provider.account)}/Messages.json",
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Authorization": "Basic "
            + base64.b64encode(f"{provider.account}:{provider.token}".encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc)
        # 4xx other than rate limiting: the request itself is wrong (bad number, unknown sender).
        permanent = 400 <= exc.code < 500 and exc.code != 429
        raise TextSendError(f"the text provider answered {exc.code}: {detail}", permanent=permanent) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TextSendError(f"the text provider could not be reached: {exc}") from None
    sid = str(answer.get("sid") or "")
    if not sid:
        raise TextSendError("the text provider's answer had no message id")
    return sid


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read() or b"{}")
        return f"{data.get('code', '')} {data.get('message', '')}".strip() or exc.reason
    except ValueError:
        return str(exc.reason)


def signature(url: str, params: dict[str, str], token: str) -> str:
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(url: str, params: dict[str, str], given: str) -> bool:
    """Whether a webhook really comes from the provider. In outbox mode there is no provider and
    no token: every webhook is refused."""
    provider = text_provider()
    if provider.kind != "twilio" or not given:
        return False
    return hmac.compare_digest(signature(url, params, provider.token), given)
