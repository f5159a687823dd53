"""Consent statements in a lead's free-text comments, read as evidence for the consent ledger.

Pure: no database, no settings. Lead providers put their form's opt-in boxes into the ADF
<comments> as "label: answer" lines, one per line, for example:

    Can we contact you via text?: Yes
    Text Opt-In: Y
    SMS opt in: true
    Email Opt-In: No
    Phone Opt-In: Yes
    OK to text: yes
    Contact by text: no
    Do Not Call: Yes            (a refusal: the label is negative)
    Email Opt-Out: Y            (a refusal; "Email Opt-Out: N" is no consent, and is ignored)

A line counts only when its label asks for permission (opt-in/out, consent, permission, "can we",
"OK to", "contact by/via", "do not ...") and names a channel (text/SMS, email, phone/call), and its
answer is one of Yes/Y/true/1/on (granted) or No/N/false/0/off (refused). Anything else is
ignored: "Preferred contact: text" states a preference, not consent, and "SMS consent: maybe"
answers nothing. A flag is evidence with provenance (compliance.md row 10 and B.3), not proof of
prior express written consent: that depends on the provider's disclosure, which is kept apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Flag:
    channel: str  # "text" | "call" | "email"
    granted: bool
    evidence: str  # the comment line exactly as written, surrounding whitespace removed


# "label: answer" or "label = answer"; the answer is short, the label may end with "?".
_STATEMENT = re.compile(r"^(?P<label>[^:=]{2,100}?)\s*[:=]\s*(?P<answer>[^:=]{1,12}?)[\s.!]*$")
# Several statements on one line ("Text Opt-In: Y; Email Opt-In: N") are split on ; and |, then,
# only if a piece is not one statement, on commas ("If we can't reach you, may we text?" keeps its
# comma) and after a leading "Comments:"-style prefix.
_SEPARATOR = re.compile(r"\s*[;|]\s*")
_PREFIX = re.compile(r"^[^:=]{1,40}:\s*(?P<rest>.+)$")
_ASKS_PERMISSION = re.compile(
    r"\bopt[\s_-]*(?:in|out)\b|\boptin\b|\boptout\b|\bconsent\w*|\bpermission|\bagree\w*|\ballow\w*"
    r"|\bsubscri\w*|\bcan\s+we\b|\bmay\s+we\b|\bok(?:ay)?\s+to\b|\bcontact(?:ed)?\s+(?:by|via|me|you)\b"
    r"|\breach\s+(?:you|me)\b|\bdo[\s_-]*not\b|\bdon'?t\b|\bno\s+(?:texts?|calls?|e-?mails?|sms)\b",
    re.I,
)
# A negative label turns "yes" into a refusal: "Do Not Call: Yes" refuses calls. Its "no" is
# ignored: an unticked opt-out box is not an affirmative consent (TCPA and CASL want one).
_NEGATIVE_LABEL = re.compile(
    r"\bopt[\s_-]*out\b|\boptout\b|\bun-?subscri\w*|\bdo[\s_-]*not\b|\bdon'?t\b"
    r"|\bno\s+(?:texts?|calls?|e-?mails?|sms)\b",
    re.I,
)
# "Preferred contact: ..." or "Best way to reach you: ..." is a preference, never consent.
_PREFERENCE = re.compile(r"\bprefer\w*|\bbest\s+(?:way|time)\b", re.I)
_TEXT = re.compile(r"\b(?:texts?|texting|sms|txt|mobile\s+messages?)\b", re.I)
_EMAIL = re.compile(r"\be-?mails?\b|\bemailing\b", re.I)
_CALL = re.compile(r"\b(?:calls?|calling|voice|dnc)\b", re.I)
# "phone" is the call channel ("Phone Opt-In", "contact by phone, text or email") except where it
# is the device a text goes to ("texts to your mobile phone"): reading that as call consent would
# overstate the evidence. Labels are whitespace-collapsed first, so one space is enough here.
_PHONE = re.compile(r"(?<!your )(?<!my )(?<!mobile )(?<!cell )(?<!to )(?<!on )\b(?:tele)?phone\b", re.I)

_GRANTED = frozenset({"yes", "y", "true", "1", "on"})
_REFUSED = frozenset({"no", "n", "false", "0", "off"})


def _channels(label: str) -> list[str]:
    channels = []
    if _TEXT.search(label):
        channels.append("text")
    if _CALL.search(label) or _PHONE.search(label):
        channels.append("call")
    if _EMAIL.search(label):
        channels.append("email")
    return channels


def _statements(evidence: str) -> list[re.Match[str]]:
    found = []
    for piece in _SEPARATOR.split(evidence):
        # A leading bullet ("- ", "* ") is layout, not part of the label.
        piece = piece.lstrip("-*\u2022 \t")
        match = _STATEMENT.match(piece)
        if match:
            found.append(match)
            continue
        parts = [_STATEMENT.match(part.strip()) for part in piece.split(",")]
        if len(parts) > 1 and any(parts):
            found.extend(part for part in parts if part)
            continue
        prefixed = _PREFIX.match(piece)
        if prefixed and (match := _STATEMENT.match(prefixed.group("rest"))):
            found.append(match)
    return found


def consent_flags(comments: str) -> list[Flag]:
    """Every consent statement in `comments`, in order, one Flag per statement and channel.

    "Can we contact you via text?: Yes" gives Flag("text", True, that line); "Email Opt-In: No"
    gives Flag("email", False, ...); "Do Not Call: Y" gives Flag("call", False, ...). A label naming
    several channels ("Text/Email opt-in: yes") gives one flag for each. The evidence is the whole
    line, so a split line ("Text Opt-In: Y; Email Opt-In: N") is the evidence of both its flags.
    A statement with no channel ("Opt-in: Yes") says nothing usable and gives no flag.
    """
    flags: list[Flag] = []
    for line in (comments or "").splitlines():
        evidence = line.strip()
        for match in _statements(evidence):
            # "text_opt_in" is how forms and CRMs name the box: underscores read as spaces.
            label = " ".join(match.group("label").replace("_", " ").split())
            if _PREFERENCE.search(label) or not _ASKS_PERMISSION.search(label):
                continue
            answer = match.group("answer").strip().casefold()
            if answer not in _GRANTED and answer not in _REFUSED:
                continue
            granted = answer in _GRANTED
            if _NEGATIVE_LABEL.search(label):
                if not granted:
                    continue
                granted = False
            for channel in _channels(label):
                flags.append(Flag(channel=channel, granted=granted, evidence=evidence))
    return flags
