"""ADF leads that arrive by email: find the ADF in a raw RFC 822 message, then
hand it to `pursuit.intake.adf.parse`.

Providers put the ADF in an attachment (.xml/.adf, application/xml, text/xml,
sometimes application/octet-stream), in the text/plain body, or pasted into an
HTML body, raw inside <pre> or escaped as `&lt;adf&gt;`. Transfer encodings and
charsets are undone by the stdlib `email` package; the search order is:
ADF attachments, any other part containing `<adf`, text/plain, text/html, and
last an XML attachment that is not ADF (so the admin sees "not ADF: root is <x>").
"""

from __future__ import annotations

import html
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from pursuit.intake import adf
from pursuit.intake.parsed import ParsedDocument, PayloadError

__all__ = ["parse_email", "extract_adf"]

_XML_TYPES = frozenset({"application/xml", "text/xml", "application/adf+xml", "application/x-adf"})
_XML_SUFFIXES = (".xml", ".adf")
_ADF_OPEN = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?adf[\s>/]", re.I)
_ADF_CLOSE = re.compile(r"</(?:[A-Za-z_][\w.-]*:)?adf\s*>", re.I)
# What may stand between the start we pick and <adf>: declaration, PIs, comments, DOCTYPE.
_PROLOG = re.compile(
    r"(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)*",
    re.I | re.S,
)
_PROLOG_START = re.compile(r"<\?xml|<\?adf|<!DOCTYPE", re.I)
_DECLARED_ENCODING = re.compile(r"""(<\?xml\s[^>]*?encoding\s*=\s*)(["'])[^"']*\2""", re.I)
_ESCAPED_ADF = re.compile(r"&lt;(?:[A-Za-z_][\w.-]*:)?adf[\s&/]", re.I)
_HTML_BREAKS = re.compile(r"<\s*(?:br|/p|/div|/tr|/li)\b[^>]*>", re.I)
_HTML_TAG = re.compile(r"<[^>]*>")
# Formatting tags a mail client may wrap around raw ADF lines; never ADF element names.
_HTML_FORMATTING = re.compile(
    r"<\s*/?\s*(?:br|p|div|span|font|b|i|u|em|strong|pre|code|tt|blockquote|wbr)\b[^>]*>", re.I
)


def _find_adf(text: str) -> str | None:
    """The ADF document in `text`, from its prolog (if any) through `</adf>`.
    Without a closing tag it runs to the end, so the parser reports the damage."""
    opening = _ADF_OPEN.search(text)
    if not opening:
        return None
    start = opening.start()
    for candidate in _PROLOG_START.finditer(text, 0, start):
        if _PROLOG.fullmatch(text, candidate.start(), start):
            start = candidate.start()
            break
    closing = _ADF_CLOSE.search(text, opening.end())
    end = closing.end() if closing else len(text)
    return text[start:end]


def _utf8(document: str) -> bytes:
    """Encode extracted text as UTF-8, making its declaration say so."""
    return _DECLARED_ENCODING.sub(r"\1\2UTF-8\2", document, count=1).encode("utf-8")


def _adf_from_html(markup: str) -> str | None:
    if _ESCAPED_ADF.search(markup):
        # Escaped ADF: the real tags are only formatting. Drop them, then unescape.
        plain = _HTML_TAG.sub("", _HTML_BREAKS.sub("\n", markup))
        return _find_adf(html.unescape(plain).replace("\u00a0", " "))
    found = _find_adf(markup)
    if found is None:
        return None
    # Raw ADF tags in HTML: strip the mail client's formatting, keep XML escapes intact.
    found = _HTML_FORMATTING.sub(
        lambda m: "\n" if m.group(0)[1:].lstrip().lower().startswith("br") else "", found
    )
    return found.replace("&nbsp;", " ")


def _part_bytes(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _part_text(part: EmailMessage) -> str:
    """The part's text in its declared charset, falling back to byte sniffing."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, KeyError):
        content = None
    if isinstance(content, str):
        return content
    return adf.decode_bytes(_part_bytes(part))[0]


def _xml_attachment_bytes(part: EmailMessage) -> bytes:
    raw = _part_bytes(part)
    charset = part.get_content_charset()
    if not charset or raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return raw
    try:
        raw.decode("utf-8")
        return raw
    except UnicodeDecodeError:
        pass
    try:
        # The MIME charset is better evidence than a guess; adf.parse drops the declaration.
        return raw.decode(charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return raw


def _is_xml_attachment(part: EmailMessage) -> bool:
    filename = (part.get_filename() or "").strip().lower()
    return part.get_content_type() in _XML_TYPES or filename.endswith(_XML_SUFFIXES)


def extract_adf(raw: bytes) -> bytes:
    """The ADF document carried by a raw email, as bytes for `adf.parse`.

    Raises `PayloadError` when the message is empty or no part holds ADF/XML.
    """
    if not raw or not raw.strip():
        raise PayloadError("the email is empty")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    leaves = [part for part in message.walk() if not part.is_multipart()]

    xml_attachments = [part for part in leaves if _is_xml_attachment(part)]
    for part in xml_attachments:
        data = _xml_attachment_bytes(part)
        if b"<adf" in data.lower() or _ADF_OPEN.search(adf.decode_bytes(data)[0]):
            return data

    for part in leaves:
        if part in xml_attachments or part.get_content_maintype() == "text":
            continue
        data = _part_bytes(part)
        text = adf.decode_bytes(data)[0] if data else ""
        found = _find_adf(text)
        if found:
            return _utf8(found)

    texts = [p for p in leaves if p.get_content_maintype() == "text" and p not in xml_attachments]
    for part in sorted(texts, key=lambda p: p.get_content_subtype() == "html"):
        text = _part_text(part)
        if part.get_content_subtype() == "html":
            found = _adf_from_html(text)
        else:
            found = _find_adf(text)
            if found is None and _ESCAPED_ADF.search(text):
                found = _find_adf(html.unescape(text))
        if found:
            return _utf8(found)

    if xml_attachments:
        return _xml_attachment_bytes(xml_attachments[0])
    raise PayloadError(f"the email contains no ADF/XML lead (looked in {len(leaves)} parts)")


def parse_email(raw: bytes) -> ParsedDocument:
    """Parse the ADF lead carried by a raw RFC 822 email.

    Raises `PayloadError` when no ADF is found or the ADF cannot become a lead.
    """
    return adf.parse(extract_adf(raw))
