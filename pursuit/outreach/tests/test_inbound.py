"""Customer email replies: tied to their lead, stored once, and what they do to the plan."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest
import time_machine
from django.core import mail

from pursuit.compliance.models import Decision
from pursuit.conftest import T0
from pursuit.outreach.inbound import reply_address
from pursuit.outreach.models import InboundEmail, OutboundEmail
from pursuit.plans.models import Step
from pursuit.plans.tests.test_plans import new_lead, plans  # noqa: F401 (the plans fixture)
from pursuit.work.services import run_due_once

pytestmark = pytest.mark.usefixtures("plans")
KEY = "mailgun-signing-key"


@pytest.fixture
def replies(settings):
    settings.PURSUIT_REPLY_ADDRESS = "replies@in.lakesidehonda.example"
    settings.PURSUIT_MAILGUN_SIGNING_KEY = KEY
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def post(client, fields, *, at=T0, key=KEY):
    timestamp, token = str(int(at.timestamp())), "a" * 50
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    with time_machine.travel(at, tick=False):
        return client.post(
            "/webhooks/email/", fields | {"timestamp": timestamp, "token": token, "signature": signature}
        )


def mailgun(
    sender,
    recipient,
    text,
    subject="Re: About the 2024 Honda Civic",
    headers=(),
    message_id="<r1@mail.example>",
):
    return {
        "sender": sender,
        "recipient": recipient,
        "subject": subject,
        "body-plain": text,
        "Message-Id": message_id,
        "message-headers": json.dumps(
            [["From", sender], ["To", recipient], ["Subject", subject], ["Message-Id", message_id], *headers]
        ),
    }


def test_emails_to_customers_reply_to_the_lead_and_its_owner(rooftop, bdc_team, replies):
    lead = new_lead(rooftop)
    while run_due_once(now=T0):
        pass
    answer = next(m for m in mail.outbox if m.to == ["ann@example.com"])
    assert answer.reply_to == [reply_address(lead), lead.owner.email]
    assert reply_address(lead).startswith(f"replies+L{lead.pk}.") and reply_address(lead).endswith(
        "@in.lakesidehonda.example"
    )


def test_a_reply_lands_on_the_lead_once_and_holds_the_plan(rooftop, bdc_team, replies, client):
    lead = new_lead(rooftop)
    fields = mailgun(
        "Ann Lee <ann@example.com>",
        reply_address(lead),
        "Yes, is Saturday OK?\n\nOn Tue, Sam wrote:\n> Hi Ann",
    )
    assert post(client, fields).status_code == 200
    assert post(client, fields).status_code == 200  # Mailgun retried
    [inbound] = InboundEmail.objects.all()
    assert (
        inbound.lead == lead
        and inbound.matched_by == "reply address"
        and inbound.text == "Yes, is Saturday OK?"
    )
    lead.refresh_from_db()
    assert lead.reply_waiting_at == T0
    assert Step.objects.get(lead=lead, plan_step__name="Intro email").status == "held"
    assert lead.events.filter(kind="email-in").count() == 1


def test_threads_and_senders_tie_replies_too_and_a_stop_request_is_flagged(
    rooftop, bdc_team, replies, client
):
    lead = new_lead(rooftop)
    while run_due_once(now=T0):
        pass
    sent = OutboundEmail.objects.filter(lead=lead).first()
    fields = mailgun(
        "ann@example.com",
        "sales@lakesidehonda.example",
        "Please take me off your list.",
        headers=[["In-Reply-To", sent.message_id]],
        message_id="<r2@mail.example>",
    )
    post(client, fields)
    inbound = InboundEmail.objects.get(message_id="<r2@mail.example>")
    assert inbound.lead == lead and inbound.matched_by == "thread"
    assert Decision.objects.filter(customer=lead.customer, rule="possible-stop").exists()
    post(
        client,
        mailgun("ANN@example.com", "sales@lakesidehonda.example", "Thanks!", message_id="<r3@mail.example>"),
    )
    assert InboundEmail.objects.get(message_id="<r3@mail.example>").matched_by == "sender"


def test_an_out_of_office_is_recorded_but_is_not_a_reply(rooftop, bdc_team, replies, client):
    lead = new_lead(rooftop)
    fields = mailgun(
        "ann@example.com",
        reply_address(lead),
        "I am away until Monday.",
        subject="Automatic reply: About the Civic",
        headers=[["Auto-Submitted", "auto-replied"]],
    )
    post(client, fields)
    lead.refresh_from_db()
    assert lead.reply_waiting_at is None and InboundEmail.objects.get().automatic


def test_forged_or_replayed_webhooks_are_refused(rooftop, bdc_team, replies, client):
    lead = new_lead(rooftop)
    fields = mailgun("ann@example.com", reply_address(lead), "hello")
    assert post(client, fields, key="not-the-key").status_code == 403
    old = post(client, fields, at=T0)
    assert old.status_code == 200
    timestamp, token = str(int(T0.timestamp())), "a" * 50
    signature = hmac.new(KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        late = client.post(
            "/webhooks/email/", fields | {"timestamp": timestamp, "token": token, "signature": signature}
        )
    assert late.status_code == 403
    forged_tag = reply_address(lead).replace(".", ".x", 1)
    post(client, mailgun("someone@else.example", forged_tag, "hi", message_id="<r9@mail.example>"))
    assert InboundEmail.objects.get(message_id="<r9@mail.example>").lead is None


@pytest.fixture
def imap_server():
    """A real IMAP4 server on loopback: the test server that ships with aioimaplib, run on its
    own event loop in a thread."""
    import asyncio
    import threading

    from aioimaplib.imap_testing_server import MockImapServer

    from pursuit.conftest import free_port

    loop = asyncio.new_event_loop()
    server = MockImapServer(loop=loop)
    port = free_port()
    listening = loop.run_until_complete(server.run_server(host="127.0.0.1", port=port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server.port = port
    yield server
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    listening.close()


def test_the_polled_mailbox_is_read_once_and_moved_out_of_the_inbox(rooftop, bdc_team, replies, imap_server):
    from email.message import EmailMessage

    from aioimaplib.imap_testing_server import Mail

    from pursuit.outreach.inbound import mailbox_poll

    lead = new_lead(rooftop)
    message = EmailMessage()
    message["From"], message["To"] = "Ann Lee <ann@example.com>", reply_address(lead)
    message["Subject"], message["Message-ID"] = "Re: your email", "<imap1@mail.example>"
    message.set_content("Could you send the price with the trade?")
    imap_server.receive(Mail(message), imap_user="replies")
    url = f"imap://replies:secret@127.0.0.1:{imap_server.port}/INBOX"
    assert mailbox_poll(now=T0, url=url) == 1
    assert mailbox_poll(now=T0 + dt.timedelta(minutes=1), url=url) == 0  # moved to the "Pursuit" folder
    [inbound] = InboundEmail.objects.all()
    assert (
        inbound.lead == lead
        and inbound.channel == "imap"
        and inbound.text == "Could you send the price with the trade?"
    )
