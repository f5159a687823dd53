"""Email replies from customers: tying them to their lead, and what a reply does.

Every email Pursuit sends a customer has `Reply-To` set to the lead's own reply address (when
`PURSUIT_REPLY_ADDRESS` is set: `replies+L42.k3x9q2@in.example` for `replies@in.example`) and
to its owner, so the owner sees the answer at once and Pursuit records it. An inbound email is
tied to its lead by, in order: that reply address among its recipients (signed: a made-up tag
matches nothing), the thread (`In-Reply-To`/`References` naming a message we sent), or the
sender's address being a customer's.

Inbound email arrives through an inbound-mail service's webhook (Mailgun's format, signed with
the account's webhook signing key) or by polling an IMAP mailbox (`PURSUIT_IMAP_URL`). Either
way it is stored first (once per Message-ID), then put on the lead's timeline; a reply from a
person (not an out-of-office) pauses the plan's automatic steps, waits at the top of the owner's
list, and is checked for plain-language stop requests for a person to confirm.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import hmac
import imaplib
import logging
import re
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.html import strip_tags

from pursuit.leads.models import CustomerEmail, Lead, LeadEvent
from pursuit.outreach.models import InboundEmail, OutboundEmail

log = logging.getLogger(__name__)

_TAG = re.compile(r"\+L(\d+)\.([a-z0-9]{10})@", re.I)
_MESSAGE_IDS = re.compile(r"<[^<>\s]+>")
_AUTOMATIC_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|autoreply)\b", re.I
)


def _tag(lead_id: int) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"reply:{lead_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:10]


def reply_address(lead) -> str:
    """The lead's own reply address, or "" when no inbound address is configured."""
    base = settings.PURSUIT_REPLY_ADDRESS
    if not base or "@" not in base:
        return ""
    local, _, domain = base.partition("@")
    return f"{local}+L{lead.pk}.{_tag(lead.pk)}@{domain}"


def reply_to(lead) -> list[str]:
    """Reply-To for an email to this lead's customer: Pursuit's reply address and the owner."""
    found = [reply_address(lead)] if reply_address(lead) else []
    if lead.owner is not None and lead.owner.email:
        found.append(lead.owner.email)
    return found


def _lead_by_address(addresses: list[str]) -> Lead | None:
    for address in addresses:
        match = _TAG.search(address + "@")
        if match and hmac.compare_digest(match[2].lower(), _tag(int(match[1]))):
            return (
                Lead.objects.filter(pk=int(match[1])).select_related("customer", "rooftop", "owner").first()
            )
    return None


def _lead_by_thread(message: EmailMessage) -> Lead | None:
    ids = _MESSAGE_IDS.findall(" ".join(str(message.get(h, "")) for h in ("In-Reply-To", "References")))
    if not ids:
        return None
    sent = (
        OutboundEmail.objects.filter(message_id__in=ids, lead__isnull=False)
        .select_related("lead")
        .order_by("-sent_at")
        .first()
    )
    return sent.lead if sent else None


def _lead_by_sender(sender: str) -> Lead | None:
    customer_ids = CustomerEmail.objects.filter(
        address=sender.lower(), customer__merged_into__isnull=True
    ).values_list("customer_id", flat=True)
    leads = Lead.objects.filter(customer_id__in=list(customer_ids)).select_related(
        "customer", "rooftop", "owner"
    )
    return (
        leads.filter(status__in=Lead.OPEN_STATUSES).order_by("-created_at").first()
        or leads.order_by("-created_at").first()
    )


def _automatic(message: EmailMessage) -> bool:
    """RFC 3834 and the usual vendor headers: an out-of-office is not the customer answering."""
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (
        auto not in ("", "no")
        or precedence in ("auto_reply", "bulk", "junk", "list")
        or message.get("X-Autoreply") is not None
        or message.get("X-Autorespond") is not None
        or bool(_AUTOMATIC_SUBJECT.match(str(message.get("Subject", ""))))
    )


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # a charset Python does not know: take what decodes
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if part.get_content_subtype() == "html":
        content = strip_tags(content)
    return content.strip()


def email_inbound(*, message: EmailMessage, channel: str, now: dt.datetime) -> InboundEmail:
    """Take in one email (parsed with `email.policy.default`). Idempotent by Message-ID."""
    from pursuit.compliance.keywords import own_text
    from pursuit.compliance.services import email_reply_check
    from pursuit.plans.services import on_reply

    raw_id = str(message.get("Message-ID", "")).strip()
    body = _text(message)
    message_id = raw_id or "<sha256." + hashlib.sha256(message.as_bytes()).hexdigest() + "@pursuit.invalid>"
    sender = parseaddr(str(message.get("From", "")))[1].lower()
    recipients = [
        a
        for _, a in getaddresses(
            [str(message.get(h, "")) for h in ("To", "Cc", "Delivered-To", "X-Original-To")]
        )
    ]
    lead, matched_by = _lead_by_address(recipients), "reply address"
    if lead is None:
        lead, matched_by = _lead_by_thread(message), "thread"
    if lead is None:
        lead, matched_by = _lead_by_sender(sender), "sender"
    if lead is None:
        matched_by = ""
    automatic = _automatic(message)
    text = own_text(body).strip()
    try:
        with transaction.atomic():
            inbound = InboundEmail.objects.create(
                rooftop=lead.rooftop if lead else None,
                lead=lead,
                customer=lead.customer if lead else None,
                message_id=message_id[:300],
                from_address=sender[:254],
                to_address=", ".join(recipients),
                subject=str(message.get("Subject", ""))[:300],
                text=text,
                body=body,
                automatic=automatic,
                matched_by=matched_by,
                channel=channel,
                received_at=now,
            )
    except IntegrityError:
        return InboundEmail.objects.get(message_id=message_id[:300])  # delivered twice
    if lead is None:
        log.info("an email from %s matched no lead (kept as inbound email %s)", sender, inbound.pk)
        return inbound
    LeadEvent.objects.create(
        lead=lead,
        kind=LeadEvent.Kind.EMAIL_IN,
        at=now,
        text=("Automatic reply" if automatic else "Email")
        + f" from {sender}: {inbound.subject}\n{text[:2000]}",
        data={"inbound_email": inbound.pk, "automatic": automatic},
    )
    if not automatic:
        email_reply_check(lead=lead, text=body, at=now)
        if lead.is_open:
            on_reply(lead=lead, channel="email", text=text or inbound.subject, now=now)
    return inbound


# --------------------------------------------------------------------------- Mailgun webhook


def mailgun_signature_valid(timestamp: str, token: str, signature: str, *, now: dt.datetime) -> bool:
    """Mailgun signs HMAC-SHA256(signing key, timestamp + token); a stale timestamp is refused
    so a captured request cannot be replayed later."""
    key = settings.PURSUIT_MAILGUN_SIGNING_KEY
    if not key or not (timestamp and token and signature):
        return False
    try:
        age = abs(now.timestamp() - float(timestamp))
    except ValueError:
        return False
    expected = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return age <= 15 * 60 and hmac.compare_digest(expected, signature)


def message_from_mailgun(fields: dict[str, str]) -> EmailMessage:
    """The email a Mailgun route forwards: the whole MIME message (`body-mime`, routes whose
    URL ends in "mime"), or the parsed fields with `message-headers`."""
    if fields.get("body-mime"):
        return email.message_from_string(fields["body-mime"], policy=email.policy.default)
    import json

    message = EmailMessage()
    try:
        headers = json.loads(fields.get("message-headers") or "[]")
    except ValueError:
        headers = []
    seen = set()
    for name, value in headers:
        if name.lower() in ("content-type", "content-transfer-encoding", "mime-version"):
            continue
        try:
            message[name] = value
        except (ValueError, TypeError):
            continue
        seen.add(name.lower())
    for name, key in (
        ("From", "sender"),
        ("To", "recipient"),
        ("Subject", "subject"),
        ("Message-ID", "Message-Id"),
    ):
        if name.lower() not in seen and fields.get(key):
            message[name] = fields[key]
    message.set_content(fields.get("body-plain", ""))
    return message


# --------------------------------------------------------------------------- IMAP


def mailbox_poll(*, now: dt.datetime, url: str | None = None, limit: int = 200) -> int:
    """Read the messages in `PURSUIT_IMAP_URL` (imaps://user:password@host:993/INBOX, or imap://
    without TLS; `?done=Folder` names where read messages go, default "Pursuit"), take each in,
    and only then move it out of the folder: a crash re-reads it, and its Message-ID keeps it
    once. Moving, not flagging, so that a person reading the mailbox cannot hide a reply."""
    url = url or settings.PURSUIT_IMAP_URL
    if not url:
        return 0
    parts = urlsplit(url)
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    done = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("done", "Pursuit")
    client_class = imaplib.IMAP4_SSL if parts.scheme == "imaps" else imaplib.IMAP4
    client = client_class(parts.hostname, parts.port or (993 if parts.scheme == "imaps" else 143), timeout=30)
    taken = 0
    try:
        client.login(unquote(parts.username or ""), unquote(parts.password or ""))
        client.create(done)  # answers NO when it exists: fine
        client.select(folder)
        _, data = client.uid("search", None, "ALL")
        for uid in (data[0] or b"").split()[:limit]:
            _, fetched = client.uid("fetch", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
            if raw is None:
                continue
            email_inbound(
                message=email.message_from_bytes(raw, policy=email.policy.default), channel="imap", now=now
            )
            # "n:n" rather than "n": the same set, and some servers only take ranges here.
            status, _ = client.uid("move", b"%s:%s" % (uid, uid), done)
            if status != "OK":  # a server without MOVE (RFC 6851)
                client.uid("copy", uid, done)
                client.uid("store", uid, "+FLAGS", "(\\Deleted)")
                client.expunge()
            taken += 1
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return taken


def mailbox_poll_run(job, *, now: dt.datetime) -> None:
    """The worker's handler for "mailbox-poll" jobs (scheduled every minute while configured)."""
    mailbox_poll(now=now)
