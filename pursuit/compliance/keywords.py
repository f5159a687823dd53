"""Inbound opt-out, opt-in and help words, and the replies the carriers expect.

Pure functions: no database, no settings. They run at the gateway, before any automatic or AI
reply (compliance.md B.5), so they must be fast and must never raise on odd input.

- `sms_keyword(body)` is the exact-match keyword table of the CTIA handbook and the FCC's per se
  revocations (compliance.md rows 11-12). A "stop" here is a revocation to apply at once, without
  a person.
- `sounds_like_stop(text)` is the fallback for plain language ("stop texting me", "wrong
  number") in a text or an email reply. The FCC lets a consumer revoke "by any reasonable means",
  so these are flagged for a person to confirm; flagging too much costs a click, missing one
  costs a lawsuit.
- `stop_confirmation`, `start_confirmation` and `help_reply` build the one plain reply allowed
  after each keyword (no marketing in any of them).
"""

from __future__ import annotations

import re

# CTIA opt-out words plus the FCC's per se revocations ("revoke", "opt out"). ARRET/ARRÊT and AIDE
# are the French equivalents Canadian carriers use for bilingual programmes.
_STOP_WORDS = frozenset(
    {
        "stop",
        "stopall",
        "stop all",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "opt out",
        "optout",
        "opt-out",
        "arret",
        "arrêt",
    }
)
_START_WORDS = frozenset({"start", "unstop", "yes"})
_HELP_WORDS = frozenset({"help", "info", "aide"})

# Phones add smart quotes; people add "!!!". Only the ends are trimmed: "stop by" stays two words.
_TRIM = " \t\r\n\"'\u2018\u2019\u201c\u201d.!?,;:()*"


def sms_keyword(body: str) -> str:
    """The keyword a whole text message is, as "stop", "start", "help" or "".

    Exact match only, ignoring case, surrounding whitespace and quotes, and trailing
    punctuation: "Stop." and " STOP!! " are "stop"; "stop by at 5" is "". "start" means
    resubscribe only for a number that is opted out: to a live conversation "Yes" is an
    ordinary answer, and the caller decides which it is.
    """
    word = " ".join((body or "").strip(_TRIM).split()).casefold()
    if word in _STOP_WORDS:
        return "stop"
    if word in _START_WORDS:
        return "start"
    if word in _HELP_WORDS:
        return "help"
    return ""


# --------------------------------------------------------------------------- plain language

# Each alternative is one way people say "stop contacting me". Word boundaries and the few
# look-aheads keep "can you stop by the lot?" and "I will stop in tomorrow" out.
_CONTACT_ING = (
    r"(?:texting|txting|messaging|msging|calling|phoning|ringing|e-?mailing|contacting|bothering"
    r"|spamming|harass?ing|pestering|bugging|hounding|reaching\s+out)"
)
_CONTACT_VERB = r"(?:contact|text|txt|call|phone|ring|e-?mail|message|msg|bother|reach\s+out\s+to|send)"
_MESSAGES = r"(?:texts?|txts?|text\s+messages?|messages?|msgs?|calls?|phone\s+calls?|e-?mails?|spam)"
_MY_DETAILS = (
    r"(?:me|us|my\s+(?:number|name|email|e-mail|info|information|details|data"
    r"|contact(?:\s+info)?|phone(?:\s+number)?|cell(?:\s+number)?))"
)
_PHRASES = [
    # "stop texting me", "quit calling"; not "stop calling around" (shopping other dealers).
    rf"\b(?:stop|quit|cease)\s+{_CONTACT_ING}\b(?!\s+(?:around|other|the\s+other|dealers?|dealerships?)\b)"
    r"(?:\s+(?:me|us))?",
    rf"\b(?:stop|quit|end)\s+(?:(?:all\s+)?(?:the|these|those|your|this)\s+|all\s+)?{_MESSAGES}\b",
    r"\bstop\s+sending\s+(?:me|us|these|those|this|your|them|texts|messages|e-?mails|spam|junk)\b",
    r"\bstop(?:[\s!.,]+stop)+\b",
    # "please stop." but not "please stop by".
    r"\bplease\s+stop\b(?=\s*(?:[.!,;)]|$|now\b|it\b|this\b|immediately\b|contact))",
    r"\bstop\s*,?\s*please\b",
    r"\bleave\s+(?:me|us)\s+alone\b",
    r"\b(?:go\s+away|get\s+lost|piss\s+off|buzz\s+off|f\S{0,4}k\s+off|eff\s+off)\b(?!\s+(?:for|on|to|this|next|until)\b)",
    r"\bwrong\s+(?:number|person|phone)\b|\bwrong\s+#",
    r"\blose\s+(?:my|this)\s+number\b",
    # Not "drop me off" or "pull me out of": a service customer asks for a ride.
    rf"\b(?:take|get|remove|delete|scratch|cross|strike)\s+{_MY_DETAILS}\s+(?:off|from|out\s+of)\b",
    rf"\b(?:remove|delete)\s+{_MY_DETAILS}\b",
    r"\bun-?subscrib\w*",
    r"\bopt(?:ing|ed)?[\s-]*(?:me\s+)?out\b",
    r"\brevok\w*",
    r"\bwithdraw\w*\s+(?:my\s+|all\s+)?(?:consent|permission)\b",
    r"\b(?:do\s+not|don't|dont|no\s+longer)\s+(?:consent|give\s+(?:you\s+)?(?:my\s+)?(?:consent|permission))\b",
    r"\bcease\s+and\s+desist\b",
    r"\bharass(?:ing|ment)\b",
    # "don't text me", "never call me again"; "why don't you call me" has no verb after "don't".
    # "you never call me back" is a complaint, and "don't call me back" only saves a reply.
    rf"\b(?:do\s*not|don't|dont|never)\s+(?:ever\s+)?{_CONTACT_VERB}\s+(?:me|us|this\s+number|again|any\s*more)\b"
    r"(?!\s+back\b)",
    r"\bdo[\s-]+not[\s-]+(?:call|contact|text|e-?mail)\b",
    rf"\b(?:don't|dont|do\s+not)\s+want\s+(?:any\s*more\s+|more\s+|your\s+|these\s+|any\s+)?{_MESSAGES}",
    r"\b(?:don't|dont|do\s+not)\s+want\s+to\s+be\s+(?:contacted|called|texted|e-?mailed|bothered)\b",
    rf"\bno\s+more\s+(?:{_MESSAGES}|contact)\b",
    # A soft one, flagged anyway: a reasonable person can read it as "stop". "Not interested in
    # the red one" is about a car, not about being contacted.
    r"\b(?:not|no\s+longer)\s+interested\b"
    r"(?!\s+in\s+(?:the|that|this|those|these|financing|leasing|a\s+lease)\b)",
    # French (Quebec and the rest of Canada, CASL).
    r"\barr[êe]te[rz]?\s+de\s+m(?:e\s+|')\w+",
    r"\bne\s+m(?:e\s+|')(?:appelez|contactez|[ée]crivez|textez|texte|envoyez)\s+plus\b",
    r"\bd[ée]s(?:abonn|inscri)\w*",
    r"\blaissez[\s-]moi\s+tranquille\b",
    r"\bpas\s+int[ée]ress[ée]e?s?\b",
    r"\bmauvais\s+num[ée]ro\b",
]
# One alternation: a single scan, and search() returns the leftmost phrase.
_STOP_PHRASE = re.compile("|".join(f"(?:{p})" for p in _PHRASES), re.I | re.M)
_SENTENCE_END = re.compile(r"[.!?;\n]+")

# Where the quoted earlier message starts in an email reply.
_ATTRIBUTION = re.compile(
    r"^[ \t]*(?:On\b[^\n]{0,200}?(?:\n[^\n]{0,200}?){0,2}\bwrote:"
    r"|Le\b[^\n]{0,200}?(?:\n[^\n]{0,200}?){0,2}\ba\s+[ée]crit\s*:)[ \t]*$",
    re.M,
)
# Outlook and forwards quote without ">": everything after these lines is the earlier message.
_QUOTED_BLOCK = re.compile(
    r"^[ \t]*(?:-{2,}\s*(?:Original\s+Message|Forwarded\s+message)\s*-{2,}"
    r"|_{10,}[ \t]*$"
    r"|(?:From|De)\s*:[^\n]*\n(?:[^\n]*\n){0,3}?[ \t]*(?:Sent|Date|Envoy[ée])\s*:)",
    re.M | re.I,
)


def own_text(text: str) -> str:
    """The part of a reply its sender wrote: quoted lines (starting with ">") removed, and
    the earlier message cut off after "On ... wrote:" or an Outlook "From: ... Sent:" header.

    The dealer's own earlier message ("Reply STOP to opt out", "Stop by any time") is in most
    replies and must not be read as the customer's words. When the quote after "On ... wrote:"
    is ">"-quoted, only the quoted lines go, so an answer written below the quote is kept.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    block = _QUOTED_BLOCK.search(text)
    if block:
        text = text[: block.start()]
    attribution = _ATTRIBUTION.search(text)
    if attribution:
        after = text[attribution.end() :]
        first = next((line for line in after.split("\n") if line.strip()), "")
        text = text[: attribution.start()] + (after if first.lstrip().startswith(">") else "")
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))


def sounds_like_stop(text: str) -> str:
    """The words in a text or an email reply that read as a request to stop contacting, or "".

    For a person to confirm (the FCC's "any reasonable means"), not for automatic action: an
    exact keyword message is `sms_keyword`'s job. Quoted earlier messages are ignored (see
    `own_text`). The phrase is returned as written, with its whitespace collapsed, so the person
    sees the evidence. Examples that match: "stop texting me", "take me off your list", "wrong
    number", "not interested". That do not: "can you stop by the lot at 5?", "I will stop in
    tomorrow".
    """
    mine = own_text(text).replace("\u2019", "'").replace("\u2018", "'")
    match = _STOP_PHRASE.search(mine)
    if match:
        return " ".join(match.group(0).split())
    # "Stop." or "Unsubscribe" as a sentence of its own in a longer message.
    for sentence in _SENTENCE_END.split(mine):
        if sms_keyword(sentence) == "stop":
            return " ".join(sentence.split())
    return ""


# --------------------------------------------------------------------------- replies

# Replies stay in plain ASCII (the GSM-7 alphabet) so a typical one fits one 160-character segment.


def _brand(rooftop_name: str) -> str:
    brand = " ".join((rooftop_name or "").split())
    if not brand:
        # CTIA: every keyword reply names the brand; a blank one would go out anonymous.
        raise ValueError("a rooftop name is required: keyword replies must name the sender")
    return brand


def stop_confirmation(rooftop_name: str) -> str:
    """The single reply allowed after an opt-out: the brand, that nothing more will be sent,
    and how to come back. No marketing, no question (compliance.md rows 11-12)."""
    return (
        f"{_brand(rooftop_name)}: You are unsubscribed from our text messages. "
        "No more messages will be sent. Reply START to resubscribe."
    )


def start_confirmation(rooftop_name: str) -> str:
    """The opt-in confirmation after START/UNSTOP/YES: brand, frequency, rates, HELP and STOP."""
    return (
        f"{_brand(rooftop_name)}: You are subscribed to our text messages again. "
        "Msg frequency varies. Msg & data rates may apply. Reply HELP for help, STOP to cancel."
    )


def help_reply(rooftop_name: str, phone: str, website: str) -> str:
    """The HELP/INFO reply (compliance.md row 12): brand, a help contact (the phone, the website
    or both; at least one is required), message frequency, "Msg & data rates may apply" and
    "Reply STOP to cancel". Sent whether or not the number is subscribed."""
    contact = " or ".join(part for part in ((phone or "").strip(), (website or "").strip()) if part)
    if not contact:
        raise ValueError("a help phone number or website is required in the HELP reply")
    return (
        f"{_brand(rooftop_name)}: Help at {contact}. Msg frequency varies. "
        "Msg & data rates may apply. Reply STOP to cancel."
    )
