"""Inbound keywords and plain-language revocations (compliance.md rows 11-12). No database."""

from __future__ import annotations

import pytest

from pursuit.compliance.keywords import (
    help_reply,
    own_text,
    sms_keyword,
    sounds_like_stop,
    start_confirmation,
    stop_confirmation,
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", "stop"),
        ("stop", "stop"),
        ("  Stop.  ", "stop"),
        ("STOP!!", "stop"),
        ('"Stop"', "stop"),
        ("StopAll", "stop"),
        ("unsubscribe", "stop"),
        ("Cancel", "stop"),
        ("END", "stop"),
        ("quit", "stop"),
        ("Revoke", "stop"),
        ("opt out", "stop"),
        ("OPT  OUT", "stop"),
        ("optout", "stop"),
        ("Opt-Out", "stop"),
        ("ARRET", "stop"),
        ("START", "start"),
        ("unstop", "start"),
        ("Yes", "start"),
        ("yes!", "start"),
        ("HELP", "help"),
        ("info?", "help"),
        ("", ""),
        ("   ", ""),
        ("stop by at 5", ""),
        ("Please stop", ""),  # not exact: sounds_like_stop's job
        ("yes please", ""),
        ("helpful", ""),
        ("stopped", ""),
    ],
)
def test_sms_keyword(body, expected):
    assert sms_keyword(body) == expected


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("stop texting me", "stop texting me"),
        ("Please STOP calling me!", "STOP calling me"),
        ("Can you stop sending me these texts", "stop sending me"),
        ("Stop the texts", "Stop the texts"),
        ("Please stop.", "Please stop"),
        ("Stop. I bought elsewhere", "Stop"),
        ("STOP STOP STOP", "STOP STOP STOP"),
        ("leave me alone", "leave me alone"),
        ("Wrong number", "Wrong number"),
        ("you have the wrong #", "wrong #"),
        ("Take me off your list", "Take me off"),
        ("please remove me from your list", "remove me from"),
        ("Remove my number please", "Remove my number"),
        ("unsubscribe me", "unsubscribe"),
        ("How do I opt out?", "opt out"),
        ("Do not contact me", "Do not contact me"),
        ("I'm on the do-not-call list", "do-not-call"),
        ("don't text me", "don't text me"),
        ("Don\u2019t call me again", "Don't call me"),
        ("never email me again", "never email me"),
        ("No more messages please", "No more messages"),
        ("I don't want any more calls", "don't want any more calls"),
        ("Not interested, thanks", "Not interested"),
        ("I'm no longer interested", "no longer interested"),
        ("not interested in buying right now", "not interested"),
        ("I withdraw my consent", "withdraw my consent"),
        ("This is harassment", "harassment"),
        ("stop\ntexting me", "stop texting me"),  # a wrapped email line
        ("Arr\u00eatez de m'\u00e9crire", "Arr\u00eatez de m'\u00e9crire"),
        ("Ne m'appelez plus", "Ne m'appelez plus"),
        ("mauvais num\u00e9ro", "mauvais num\u00e9ro"),
    ],
)
def test_sounds_like_stop_flags(text, phrase):
    assert sounds_like_stop(text) == phrase


@pytest.mark.parametrize(
    "text",
    [
        "can you stop by the lot at 5?",
        "I will stop in tomorrow",
        "Yes I can stop at the dealership after work",
        "Please stop by anytime, I'm off Friday",
        "I'll stop calling around once I decide",
        "why don't you call me tomorrow",
        "Text me the price please",
        "not interested in the red one, do you have it in blue?",
        "The brakes stop fine now",
        "Can you drop me off at work after the service?",
        "You never call me back!",
        "Don't call me back, I'll come in at 5",
        "Do you have the Civic in stock?",
        "Yes",
        "",
    ],
)
def test_sounds_like_stop_leaves_ordinary_replies_alone(text):
    assert sounds_like_stop(text) == ""


GMAIL_REPLY = """Sounds good, see you Saturday.

On Tue, Mar 10, 2026 at 9:58 AM Lakeside Honda <sales@lakesidehonda.example>
wrote:

> Hi Jane, stop by any time this week.
> Reply STOP to opt out. To unsubscribe, click here.
"""

OUTLOOK_REPLY = """Thanks, I'll stop in on Friday.

________________________________
From: Lakeside Honda <sales@lakesidehonda.example>
Sent: Tuesday, March 10, 2026 9:58 AM
Subject: Your Accord

Not interested in waiting? Unsubscribe at any time.
"""


def test_quoted_dealer_message_is_not_the_customers_words():
    assert sounds_like_stop(GMAIL_REPLY) == ""
    assert sounds_like_stop(OUTLOOK_REPLY) == ""
    assert own_text(GMAIL_REPLY).strip() == "Sounds good, see you Saturday."
    assert own_text(OUTLOOK_REPLY).strip() == "Thanks, I'll stop in on Friday."


def test_revocation_above_the_quote_is_found():
    assert sounds_like_stop("Please take me off your list.\n\n" + GMAIL_REPLY) == "take me off"


def test_answer_below_a_quote_is_kept():
    bottom_posted = (
        "On Tue, Mar 10, 2026, Lakeside Honda wrote:\n> Still interested?\n\nNo. Leave me alone.\n"
    )
    assert own_text(bottom_posted).strip() == "No. Leave me alone."
    assert sounds_like_stop(bottom_posted) == "Leave me alone"


def test_stop_confirmation():
    assert stop_confirmation("Lakeside Honda") == (
        "Lakeside Honda: You are unsubscribed from our text messages. "
        "No more messages will be sent. Reply START to resubscribe."
    )


def test_start_confirmation():
    assert start_confirmation(" Lakeside  Honda ") == (
        "Lakeside Honda: You are subscribed to our text messages again. "
        "Msg frequency varies. Msg & data rates may apply. Reply HELP for help, STOP to cancel."
    )


def test_help_reply():
    assert help_reply("Lakeside Honda", "(312) 555-0100", "lakesidehonda.example") == (
        "Lakeside Honda: Help at (312) 555-0100 or lakesidehonda.example. "
        "Msg frequency varies. Msg & data rates may apply. Reply STOP to cancel."
    )
    assert help_reply("Lakeside Honda", "", "lakesidehonda.example").startswith(
        "Lakeside Honda: Help at lakesidehonda.example. "
    )


def test_replies_fit_one_plain_sms_segment():
    replies = [
        stop_confirmation("Lakeside Honda"),
        start_confirmation("Lakeside Honda"),
        help_reply("Lakeside Honda", "(312) 555-0100", "lakesidehonda.example"),
    ]
    for reply in replies:
        assert reply.isascii() and len(reply) <= 160, reply
        # What carriers look for; none is an offer or a question.
        assert "Lakeside Honda" in reply and "?" not in reply


@pytest.mark.parametrize("builder", [stop_confirmation, start_confirmation])
def test_replies_need_a_brand(builder):
    with pytest.raises(ValueError):
        builder("  ")


def test_help_needs_a_contact():
    with pytest.raises(ValueError):
        help_reply("Lakeside Honda", " ", "")
