"""Writing to a customer by hand: a template's subject and body filled in for the lead, edited by
the person, then sent ("send now") through the compliance gate like every other touch.

The message is queued for the worker (a request never waits on a mail server); its Message-ID is
derived from a random key made when the person pressed send, so a double click sends once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from email.utils import formataddr

from django.conf import settings

from pursuit.compliance.gate import may_contact, touch_record
from pursuit.leads.models import Lead
from pursuit.org.models import User
from pursuit.outreach.services import (
    TemplateProblem,
    _domain,
    _send,
    plan_merge_fields,
    template_render,
    unsubscribe_url,
)
from pursuit.work.services import job_schedule


class ComposeError(ValueError):
    """Why a message by hand cannot go now, in plain words (the gate's reason included)."""


def compose(*, lead: Lead, template) -> dict:
    """A template filled in for the lead, for the person to edit before sending."""
    fields = plan_merge_fields(lead)
    try:
        subject = " ".join(template_render(template.subject or "", fields).split())
        body = template_render(template.body, fields)
    except TemplateProblem as exc:
        raise ComposeError(f"the template {template.name} does not render: {exc}") from exc
    return {"channel": template.channel, "subject": subject, "body": body}


def send_now(
    *, lead: Lead, by: User, channel: str, body: str, now: dt.datetime, subject: str = "", key: str = ""
) -> str:
    """Send an email or text by hand now, if the gate allows it now; else say why and when.
    Returns what was queued, in words."""
    from pursuit.texting.services import TextError, text_queue

    body = body.strip()
    if not body:
        raise ComposeError("write something first")
    key = key or uuid.uuid4().hex
    answer = may_contact(lead.customer, channel, "marketing", now, lead=lead)
    if not answer.allowed:
        raise ComposeError(answer.detail)
    if channel == "text":
        try:
            text_queue(
                rooftop=lead.rooftop,
                customer=lead.customer,
                lead=lead,
                body=body,
                now=now,
                key=f"hand:{key}",
                by=by,
            )
        except TextError as exc:
            raise ComposeError(str(exc)) from exc
        return "text queued"
    if channel != "email":
        raise ComposeError(f"{channel} cannot be sent from here")
    if not subject.strip():
        raise ComposeError("an email needs a subject")
    to = lead.customer.emails.order_by("id").values_list("address", flat=True).first()
    if not to:
        raise ComposeError("the customer has no email address")
    job_schedule(
        kind="email-by-hand",
        key=f"email-by-hand:{key}",
        due_at=now,
        now=now,
        lead=lead,
        priority=0,
        data={"to": to, "subject": subject.strip()[:300], "body": body, "by": by.pk, "key": key},
    )
    return f"email to {to} queued"


def email_by_hand_run(job, *, now: dt.datetime) -> None:
    """The worker's handler: sends the person's email from them, with the rooftop's address and
    the unsubscribe link (it is sales follow-up), and records the touch."""
    lead = Lead.objects.select_related("customer", "rooftop", "owner").get(pk=job.lead_id)
    data = job.data
    by = User.objects.filter(pk=data["by"]).first()
    link = unsubscribe_url(lead.customer, data["to"])
    body = f"{data['body'].rstrip()}\n\n--\n{lead.rooftop.name}, {lead.rooftop.postal_address}\nNo more emails from us: {link}\n"
    sender_name = by.display_name if by else lead.rooftop.name
    reply = [by.email] if by and by.email else []
    from pursuit.outreach.inbound import reply_address

    if reply_address(lead):
        reply.insert(0, reply_address(lead))
    sent = _send(
        lead=lead,
        kind="by-hand",
        to=data["to"],
        subject=data["subject"],
        body=body,
        from_email=formataddr((sender_name, lead.rooftop.email or settings.DEFAULT_FROM_EMAIL)),
        reply_to=reply,
        message_id=f"<hand.{data['key']}@{_domain(lead.rooftop.email)}>",
        now=now,
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "no",
        },
    )
    if sent is None:
        return
    if by is not None:
        # As if the person had logged it: the touch counts, the plan's email task is done, a
        # waiting reply is answered.
        from pursuit.leads.services import attempt_log

        attempt_log(lead=lead, user=by, channel="email", outcome="sent", now=now, note=data["subject"])
    else:
        touch_record(
            customer=lead.customer,
            channel="email",
            purpose="marketing",
            at=now,
            lead=lead,
            what=data["subject"],
        )
