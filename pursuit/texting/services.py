"""Two-way text: queueing and sending texts through the provider, and taking in the customer's.

Sending follows the email rules (docs/sending.md): a text is a row first (`queued`, with a key
that makes queueing the same text twice impossible), sent by a worker job that asks the
compliance gate again at that moment, and recorded `sent` with the provider's id as soon as the
provider accepts it. The one window for a duplicate is a worker dying between the provider's
answer and that record.

An inbound text goes through the compliance keywords before anything else
(`compliance.services.text_received`); the one reply the law asks for (the STOP confirmation,
the HELP answer) is sent even to a number that has just opted out, and nothing after it.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from pursuit.compliance.gate import may_contact, touch_record
from pursuit.compliance.services import text_received
from pursuit.leads.models import Lead, LeadEvent
from pursuit.lib.contacts import phone_normalise
from pursuit.texting.models import TextMessage
from pursuit.texting.provider import TextSendError, provider_send
from pursuit.work.models import Job
from pursuit.work.services import PermanentError, job_schedule

log = logging.getLogger(__name__)

# Replies the law requires whatever the customer's state (compliance.md row 12): not gated.
KEYWORD_REPLY = "keyword-reply:"


class TextError(ValueError):
    """A text that cannot be queued; the message says why in plain words."""


def customer_number(customer) -> str:
    """The number texts go to: the compliance gate's choice (`gate.number_for`), so that the
    number the gate judged is the number that gets the text."""
    from pursuit.compliance.gate import Facts, _phone_order, number_for

    phones = [(p.number, p.type, p.verified) for p in sorted(customer.phones.all(), key=_phone_order)]
    return number_for(Facts(phones=phones), "text")


def text_queue(
    *,
    rooftop,
    body: str,
    now: dt.datetime,
    key: str,
    customer=None,
    lead=None,
    to: str = "",
    purpose: str = "marketing",
    automated: bool = False,
    by=None,
) -> TextMessage:
    """Queue a text for the worker (idempotent by `key`)."""
    body = body.strip()
    if not body:
        raise TextError("a text needs some words")
    if not rooftop.text_number:
        raise TextError(f"{rooftop.name} has no texting number (set it in the rooftop's settings)")
    to = to or (customer_number(customer) if customer is not None else "")
    if not to:
        raise TextError("the customer has no number to text")
    try:
        with transaction.atomic():
            message = TextMessage.objects.create(
                rooftop=rooftop,
                customer=customer,
                lead=lead,
                direction=TextMessage.Direction.OUT,
                from_number=rooftop.text_number,
                to_number=to,
                body=body[:1600],
                status=TextMessage.Status.QUEUED,
                key=key[:80],
                purpose=purpose,
                automated=automated,
                by=by,
                at=now,
            )
    except IntegrityError:
        return TextMessage.objects.get(key=key[:80])
    job_schedule(
        kind="text-send",
        key=f"text-send:{message.pk}",
        due_at=now,
        now=now,
        lead=lead,
        data={"text": message.pk},
        priority=0,
    )
    return message


def text_send_run(job: Job, *, now: dt.datetime) -> None:
    """The worker's handler for "text-send" jobs."""
    message = TextMessage.objects.select_related("rooftop", "customer__rooftop", "lead").get(
        pk=job.data["text"]
    )
    if message.status != TextMessage.Status.QUEUED:
        return  # sent already (a retried job after a crash finds it recorded)
    if not (message.key or "").startswith(KEYWORD_REPLY) and message.customer is not None:
        answer = may_contact(
            message.customer, "text", message.purpose, now, automated=message.automated, lead=message.lead
        )
        if answer.verdict == "defer":
            job_schedule(
                kind="text-send",
                key=f"text-send:{message.pk}:{answer.until:%Y%m%d%H%M}",
                due_at=answer.until,
                now=now,
                lead=message.lead,
                data={"text": message.pk},
            )
            return
        if answer.verdict == "deny":
            _failed(message, f"not sent: {answer.detail}", now)
            return
        if answer.inputs.get("address") and answer.inputs["address"] != message.to_number:
            # The gate judged another number (the customer's numbers changed since queueing).
            _failed(message, f"not sent: the number to text is now {answer.inputs['address']}", now)
            return
    try:
        sid = provider_send(
            from_number=message.from_number,
            to=message.to_number,
            body=message.body,
            status_callback=settings.BASE_URL + reverse("text-status"),
        )
    except TextSendError as exc:
        if exc.permanent:
            _failed(message, str(exc), now)
            raise PermanentError(str(exc)) from exc
        raise
    with transaction.atomic():
        TextMessage.objects.filter(pk=message.pk).update(
            status=TextMessage.Status.SENT, provider_id=sid, sent_at=now
        )
        if message.customer is not None:
            touch_record(
                customer=message.customer,
                channel="text",
                purpose=message.purpose,
                at=now,
                lead=message.lead,
                by=message.by,
                automated=message.automated,
                what=message.body[:200],
            )
        if message.lead is not None:
            LeadEvent.objects.create(
                lead=message.lead,
                kind=LeadEvent.Kind.TEXT_OUT,
                at=now,
                actor=message.by,
                text=f"Texted {message.to_number}: {message.body}",
                data={"text": message.pk},
            )


def _failed(message: TextMessage, error: str, now: dt.datetime) -> None:
    TextMessage.objects.filter(pk=message.pk).update(status=TextMessage.Status.FAILED, error=error[:2000])
    if message.lead is not None:
        LeadEvent.objects.create(
            lead=message.lead,
            kind=LeadEvent.Kind.TEXT_OUT,
            at=now,
            text=f"Text to {message.to_number} not sent ({error}): {message.body}",
            data={"text": message.pk, "failed": True},
        )


def text_inbound(*, rooftop, from_number: str, body: str, provider_id: str, now: dt.datetime) -> TextMessage:
    """A text from a customer (the provider's webhook). Stored first; the compliance keywords
    come before anything else; then it lands on the lead, and a reply pauses the plan's automatic
    steps and waits at the top of the owner's list."""
    from pursuit.compliance.keywords import sms_keyword
    from pursuit.compliance.services import _customer_by_number
    from pursuit.plans.services import on_reply

    phone = phone_normalise(from_number, region=rooftop.country or "US")
    number = phone.match_key if phone else from_number.strip()
    try:
        with transaction.atomic():
            message = TextMessage.objects.create(
                rooftop=rooftop,
                direction=TextMessage.Direction.IN,
                from_number=number[:20],
                to_number=rooftop.text_number,
                body=body[:1600],
                status=TextMessage.Status.RECEIVED,
                provider_id=provider_id[:64],
                at=now,
            )
    except IntegrityError:
        return TextMessage.objects.get(provider_id=provider_id[:64])  # the provider retried
    with transaction.atomic():
        reply = text_received(rooftop=rooftop, number=number, body=body, at=now)
        customer = _customer_by_number(rooftop, number)
        lead = None
        if customer is not None:
            lead = (
                Lead.objects.filter(customer=customer, status__in=Lead.OPEN_STATUSES).first()
                or Lead.objects.filter(customer=customer).order_by("-created_at").first()
            )
            TextMessage.objects.filter(pk=message.pk).update(customer=customer, lead=lead)
            message.customer, message.lead = customer, lead
        if lead is not None:
            LeadEvent.objects.create(
                lead=lead,
                kind=LeadEvent.Kind.TEXT_IN,
                at=now,
                text=f"Text from {number}: {body}",
                data={"text": message.pk},
            )
            if sms_keyword(body) == "" and lead.is_open:
                on_reply(lead=lead, channel="text", text=body, now=now)
        if reply:
            text_queue(
                rooftop=rooftop,
                customer=customer,
                lead=lead,
                to=number,
                body=reply,
                now=now,
                key=f"{KEYWORD_REPLY}{message.pk}",
                purpose="transactional",
                automated=True,
            )
    return message


def text_status(*, provider_id: str, status: str, error: str = "") -> int:
    """A delivery report: delivered, or failed/undelivered with the provider's error code."""
    new = {
        "delivered": TextMessage.Status.DELIVERED,
        "failed": TextMessage.Status.FAILED,
        "undelivered": TextMessage.Status.FAILED,
    }.get(status)
    if new is None or not provider_id:
        return 0
    return TextMessage.objects.filter(provider_id=provider_id, direction=TextMessage.Direction.OUT).update(
        status=new, error=error[:2000]
    )
