"""Sending email: the automatic first answer and staff notifications.

Send semantics (docs/sending.md has the whole story): a message is sent by a worker job, never on
a request thread. Before sending, the job looks for the message's record by its Message-ID (which
is derived from the lead and is the same on every try); if it is there, the message was already
handed to the mail server and is not sent again. After the server accepts it, the record is
written. The only window for a duplicate is a process dying after the server accepted the
message and before the record was committed: the job is retried when its lease runs out and the
customer may get the message twice, with the same Message-ID (so mail clients and servers that
de-duplicate by Message-ID show it once). We choose at-least-once over at-most-once: a lost first
answer costs a sale, a duplicate costs little.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import smtplib
from email.utils import formataddr
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, connection, transaction
from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pursuit.compliance.gate import may_contact, touch_record
from pursuit.leads.models import Lead, LeadEvent
from pursuit.lib.contacts import phone_display
from pursuit.outreach.inbound import reply_to
from pursuit.outreach.models import OutboundEmail, ResponseTemplate
from pursuit.work.models import Job, Notification
from pursuit.work.services import PermanentError, notify

# User-written templates run in Jinja's immutable sandbox: they see only the plain dicts of merge
# fields built below (never model instances), cannot call methods that change anything, and
# cannot reach Python internals.
_templates = ImmutableSandboxedEnvironment(autoescape=False, undefined=Undefined, keep_trailing_newline=True)
_strict = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)

MERGE_FIELDS = {
    "customer": ("first_name", "last_name", "full_name"),
    "vehicle": "the first vehicle of interest, e.g. 2024 Honda Accord EX-L ('' when none)",
    "owner": ("name", "first_name", "phone", "email"),
    "rooftop": ("name", "phone", "email", "website", "address"),
}


class TemplateProblem(ValueError):
    """A template that does not render; the message says where."""


def merge_fields(lead: Lead) -> dict:
    """Everything a template may see, as plain values."""
    customer, owner, rooftop = lead.customer, lead.owner, lead.rooftop
    vehicle = next((v for v in lead.vehicles.all() if v.role == "interest"), None)
    return {
        "customer": {
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "full_name": customer.full_name,
        },
        "vehicle": str(vehicle) if vehicle else "",
        "owner": {
            "name": owner.display_name if owner else rooftop.name,
            "first_name": (owner.first_name or owner.display_name) if owner else "",
            "phone": phone_display(owner.direct_line if owner and owner.direct_line else rooftop.phone),
            "email": owner.email if owner else rooftop.email,
        },
        "rooftop": {
            "name": rooftop.name,
            "phone": phone_display(rooftop.phone),
            "email": rooftop.email,
            "website": rooftop.website,
            "address": rooftop.postal_address,
        },
    }


@functools.lru_cache(maxsize=512)
def _compiled(source: str, strict: bool):
    # Compiling is most of a render's cost (about 3 ms); the same few templates render for every
    # lead. Keyed by the text itself, so an edited template is simply a new entry.
    return (_strict if strict else _templates).from_string(source)


def template_render(source: str, fields: dict, *, strict: bool = False) -> str:
    """Render a user's template in the sandbox. `strict` makes unknown fields an error (used
    when a template is saved, so a typo is caught then, not when a customer is waiting)."""
    try:
        return _compiled(source, strict).render(fields)
    except TemplateError as exc:
        line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        raise TemplateProblem(f"{exc.message or exc}{line}") from None
    except Exception as exc:  # a user's template is untrusted input: any failure is its problem
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None


def template_check(source: str) -> None:
    """Raise `TemplateProblem` if `source` does not render with sample merge fields."""
    sample = {
        "customer": {"first_name": "Ann", "last_name": "Lee", "full_name": "Ann Lee"},
        "vehicle": "2024 Honda Accord",
        "owner": {"name": "Sam Seller", "first_name": "Sam", "phone": "555", "email": "s@example.com"},
        "rooftop": {
            "name": "Demo Motors",
            "phone": "555",
            "email": "d@example.com",
            "website": "",
            "address": "1 Main St",
        },
    }
    template_render(source, sample, strict=True)


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "pursuit.invalid"


class _MailSession:
    """One connection to the mail server for a batch of sends, opened on first use."""

    def __init__(self):
        self._connection = None

    def connection(self):
        if self._connection is None:
            self._connection = get_connection(fail_silently=False)
            self._connection.open()
        return self._connection

    def reset(self) -> None:
        """Drop the connection after an error: the next send opens a fresh one."""
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # closing a broken connection may fail too; it is gone either way
                pass
            self._connection = None


_session: contextvars.ContextVar[_MailSession | None] = contextvars.ContextVar("pursuit_mail", default=None)


@contextlib.contextmanager
def mail_session():
    """Send the messages of a batch over one connection (the worker wraps each batch in this):
    connecting and greeting the server for every message would cost more than the message."""
    session = _MailSession()
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)
        session.reset()


def _deliver(message: EmailMessage) -> None:
    session = _session.get()
    if session is None:
        get_connection(fail_silently=False).send_messages([message])
        return
    try:
        session.connection().send_messages([message])
    except Exception:
        session.reset()
        raise


def _send(
    *,
    lead: Lead | None,
    kind: str,
    to: str,
    subject: str,
    body: str,
    from_email: str,
    reply_to: list[str],
    message_id: str,
    now: dt.datetime,
    checked: bool = False,
    headers: dict | None = None,
    attachments: list[tuple[str, bytes, str]] | None = None,
) -> OutboundEmail | None:
    """Send once per Message-ID (see the module docstring). Returns the new record, or None when
    the message had already been sent. `checked`: the caller has just looked the Message-ID up
    (the worker does it once for a whole batch, see `message_ids_sent`)."""
    if not checked and message_ids_sent([message_id]):
        return None
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=from_email,
        to=[to],
        reply_to=reply_to,
        headers={
            "Message-ID": message_id,
            # RFC 3834: the first answer replies to the customer's inquiry; the rest is generated.
            "Auto-Submitted": "auto-replied" if kind == "auto-response" else "auto-generated",
        }
        | (headers or {}),
        attachments=attachments or None,
    )
    record = {
        "lead": lead,
        "kind": kind,
        "to": to,
        "from_email": from_email,
        "subject": subject[:300],
        "body": body,
        "sent_at": now,
    }
    try:
        _deliver(message)
    except smtplib.SMTPRecipientsRefused as exc:
        OutboundEmail.objects.update_or_create(
            message_id=message_id,
            defaults=record
            | {"status": OutboundEmail.Status.FAILED, "error": f"refused: {exc.recipients}"[:2000]},
        )
        raise PermanentError(f"the mail server refused {to}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        OutboundEmail.objects.update_or_create(
            message_id=message_id,
            defaults=record
            | {"status": OutboundEmail.Status.FAILED, "error": f"{type(exc).__name__}: {exc}"[:2000]},
        )
        raise
    # Recorded (committed) at once: the record is what stops a second send after a crash. Outside
    # a transaction a failed INSERT harms nothing, so the common case costs one statement.
    try:
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            return OutboundEmail.objects.create(
                message_id=message_id, status=OutboundEmail.Status.SENT, **record
            )
    except IntegrityError:  # an earlier try left a failed record
        sent, _ = OutboundEmail.objects.update_or_create(
            message_id=message_id, defaults=record | {"status": OutboundEmail.Status.SENT, "error": ""}
        )
        return sent


def message_ids_sent(message_ids: list[str]) -> set[str]:
    """Which of these messages were already handed to the mail server."""
    return set(
        OutboundEmail.objects.filter(
            message_id__in=message_ids, status=OutboundEmail.Status.SENT
        ).values_list("message_id", flat=True)
    )


def auto_response_compose(lead: Lead) -> tuple[str, str, str, list[str], str]:
    """(subject, body, from, reply-to, problem) of the lead's automatic first answer.

    A rooftop template that does not render (the admin validates them, but a template can still
    fail on unusual data) must not cost the customer their answer: the default template is used
    and `problem` says why.
    """
    kind = ResponseTemplate.Kind.AUTO_RESPONSE
    template = ResponseTemplate.objects.filter(rooftop=lead.rooftop, kind=kind).first()
    template = template or ResponseTemplate(rooftop=lead.rooftop)
    fields = merge_fields(lead)
    problem = ""
    try:
        subject = template_render(template.subject, fields)
        body = template_render(template.body, fields)
        if not body.strip():
            raise TemplateProblem("the body comes out empty")
    except TemplateProblem as exc:
        problem = f"the rooftop's template does not render ({exc}); the default was sent"
        default = ResponseTemplate(rooftop=lead.rooftop)
        subject = template_render(default.subject, fields)
        body = template_render(default.body, fields)
    subject = " ".join(subject.split())
    # From the owner's name at the rooftop's address (the rooftop's domain is the one that can
    # send mail); replies go to the owner.
    sender = formataddr((fields["owner"]["name"], lead.rooftop.email or settings.DEFAULT_FROM_EMAIL))
    return subject, body, sender, reply_to(lead), problem


def auto_response_run(job: Job, *, now: dt.datetime) -> None:
    """The worker's handler for "auto-response" jobs: the automatic first answer by email."""
    lead = Lead.objects.select_related("customer", "rooftop", "owner").get(pk=job.lead_id)
    to = lead.customer.emails.order_by("id").values_list("address", flat=True).first()
    why = "" if lead.is_open else "the lead is closed"
    if not why and not to:
        why = "no email address"
    if not why:
        # A reply to the customer's own inquiry: transactional, but stops still hold.
        answer = may_contact(lead.customer, "email", "transactional", now, automated=True, lead=lead)
        why = "" if answer.allowed else answer.detail
    if why:
        LeadEvent.objects.create(
            lead=lead, kind=LeadEvent.Kind.AUTO_RESPONSE_SKIPPED, at=now, text=f"No automatic answer: {why}"
        )
        return
    message_id = f"<auto-response.{lead.pk}@{_domain(lead.rooftop.email)}>"
    subject, body, sender, replies, problem = auto_response_compose(lead)
    sent = _send(
        lead=lead,
        kind="auto-response",
        to=to,
        subject=subject,
        body=body,
        from_email=sender,
        reply_to=replies,
        message_id=message_id,
        now=now,
    )
    if sent is None:
        return
    with transaction.atomic():
        Lead.objects.filter(pk=lead.pk, auto_response_at__isnull=True).update(auto_response_at=now)
        touch_record(
            customer=lead.customer,
            channel="email",
            purpose="transactional",
            at=now,
            lead=lead,
            automated=True,
            what="automatic answer",
        )
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.AUTO_RESPONSE,
            at=now,
            text=f"Automatic answer emailed to {to}: {subject}" + (f" (note: {problem})" if problem else ""),
            data={"email": sent.pk, "message_id": message_id, "problem": problem},
        )


def auto_response_failed(job: Job, *, now: dt.datetime, error: str) -> None:
    """The automatic answer could not be sent, for good: say so on the lead and tell its owner,
    who must now answer the customer personally."""
    lead = Lead.objects.select_related("owner", "customer").get(pk=job.lead_id)
    LeadEvent.objects.create(
        lead=lead,
        kind=LeadEvent.Kind.AUTO_RESPONSE_SKIPPED,
        at=now,
        text=f"The automatic answer could not be sent: {error}",
        data={"error": error},
    )
    if lead.owner is not None:
        notify(
            user=lead.owner,
            lead=lead,
            kind="auto-response-failed",
            now=now,
            email=False,
            text=f"{lead.customer} did not get the automatic answer: answer them yourself",
        )


def notification_email_run(job: Job, *, now: dt.datetime) -> None:
    """The worker's handler for "notify-email" jobs: a notification to a member of staff."""
    note = (
        Notification.objects.select_related("user", "lead__rooftop")
        .filter(pk=job.data.get("notification"))
        .first()
    )
    if note is None or not note.user.email or not note.user.is_active:
        return
    link = f"{settings.BASE_URL}/leads/{note.lead_id}/" if note.lead_id else settings.BASE_URL
    domain = _domain(note.lead.rooftop.email) if note.lead_id else _domain(settings.DEFAULT_FROM_EMAIL)
    _send(
        lead=note.lead,
        kind=f"notify-{note.kind}",
        to=note.user.email,
        subject=f"[Pursuit] {note.text}"[:300],
        body=f"{note.text}\n\n{link}\n",
        from_email=formataddr(("Pursuit", settings.DEFAULT_FROM_EMAIL)),
        reply_to=[],
        message_id=f"<notification.{note.pk}@{domain}>",
        now=now,
    )


def plan_merge_fields(lead: Lead, incentive: dict | None = None, appointment=None) -> dict:
    """The merge fields of plan templates: the first answer's, plus the trade-in, for a
    re-engagement the incentive or price change that is the reason to write, and for an
    appointment plan the appointment, in the customer's time."""
    trade = next((v for v in lead.vehicles.all() if v.role == "trade"), None)
    return merge_fields(lead) | {
        "trade": str(trade) if trade else "",
        "incentive": incentive or {},
        "appointment": appointment_fields(appointment, lead),
    }


def step_merge_fields(step) -> dict:
    """The merge fields of one lead's plan step (its enrolment's incentive and appointment)."""
    incentive = step.enrolment.incentive
    return plan_merge_fields(
        step.lead,
        incentive=incentive_fields(incentive) if incentive else None,
        appointment=step.enrolment.appointment,
    )


def appointment_fields(appointment, lead: Lead) -> dict:
    if appointment is None:
        return {"when": "", "day": "", "time": "", "with": ""}
    local = appointment.starts_at.astimezone(ZoneInfo(lead.customer.time_zone or lead.rooftop.time_zone))
    day = f"{local:%A, %B} {local.day}"
    time = f"{local:%-I:%M %p}".replace(":00 ", " ")
    person = appointment.with_user.display_name if appointment.with_user else ""
    return {"when": f"{day} at {time}", "day": day, "time": time, "with": person}


def incentive_fields(incentive) -> dict:
    return {
        "title": incentive.title,
        "description": incentive.description,
        "valid_until": incentive.valid_until.strftime("%B %-d") if incentive.valid_until else "",
    }


def step_purpose(step) -> str:
    """Marketing unless the step's template (or its plan) is transactional, like an appointment
    reminder the customer asked for."""
    template = step.plan_step.template if step.plan_step_id else None
    if template is not None:
        return template.purpose
    return "transactional" if step.enrolment.version.plan.kind == "transactional" else "marketing"


def unsubscribe_url(customer, address: str) -> str:
    from django.urls import reverse

    from pursuit.compliance.services import unsubscribe_token

    return settings.BASE_URL + reverse("unsubscribe", args=[unsubscribe_token(customer, address)])


def step_message_id(step) -> str:
    """The Message-ID of an automatic step's email: the same on every try (docs/sending.md)."""
    return f"<step.{step.pk}@{_domain(step.lead.rooftop.email)}>"


def _first_email(customer) -> str:
    # .all() so that a batch's prefetched addresses are used.
    emails = sorted(customer.emails.all(), key=lambda e: e.pk)
    return emails[0].address if emails else ""


def plan_email_deliver(*, step, now: dt.datetime, checked: bool = False) -> OutboundEmail | None:
    """Send an automatic plan step's email and record it. Returns the record, or None if it had
    already been sent. Raises PermanentError when it cannot be sent."""
    lead = step.lead
    template = step.plan_step.template
    if template is None:
        raise PermanentError(f"the step {step.plan_step.name} has no template")
    to = _first_email(lead.customer)
    if not to:
        raise PermanentError("the customer has no email address")
    fields = step_merge_fields(step)
    try:
        subject = " ".join(template_render(template.subject, fields).split())
        body = template_render(template.body, fields)
    except TemplateProblem as exc:
        raise PermanentError(f"the template {template.name} does not render: {exc}") from exc
    owner = fields["owner"]["name"]
    headers = {}
    if step_purpose(step) == "marketing":
        # CAN-SPAM / CASL: who we are, where, and a way out that needs no login; RFC 8058 lets
        # mail providers offer the one-click unsubscribe themselves.
        link = unsubscribe_url(lead.customer, to)
        body = f"{body.rstrip()}\n\n--\n{lead.rooftop.name}, {lead.rooftop.postal_address}\nNo more emails from us: {link}\n"
        headers = {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    attachments = None
    if step.enrolment.appointment is not None:
        from pursuit.appointments.services import appointment_ics

        # The calendar invitation rides with every email of the appointment's plan: the same
        # UID and SEQUENCE, so a calendar keeps one entry.
        ics = appointment_ics(step.enrolment.appointment)
        attachments = [("invite.ics", ics, "text/calendar; method=REQUEST")]
    return _send(
        attachments=attachments,
        lead=lead,
        kind=f"plan:{step.enrolment.version.plan.key}"[:30],
        to=to,
        subject=subject,
        body=body,
        headers=headers,
        from_email=formataddr((owner, lead.rooftop.email or settings.DEFAULT_FROM_EMAIL)),
        reply_to=reply_to(lead),
        message_id=step_message_id(step),
        now=now,
        checked=checked,
    )


def plan_email_event(step, sent: OutboundEmail) -> LeadEvent:
    """The timeline entry of a sent plan email (unsaved: the worker writes a batch's at once)."""
    return LeadEvent(
        lead_id=step.lead_id,
        kind=LeadEvent.Kind.STEP,
        at=sent.sent_at,
        text=f"{step.plan_step.name}: emailed to {sent.to}: {sent.subject}",
        data={"step": step.pk, "email": sent.pk, "message_id": sent.message_id},
    )
