"""Leads for the page tests, made through the real intake (never by writing rows by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pursuit.conftest import T0
from pursuit.intake.services import payload_receive
from pursuit.leads.models import Lead

# A small ADF lead in the shape the providers send, with an unverified phone, a VIN, a stock
# number, a trade-in and a text opt-in in the comments (kept as consent evidence).
ADF = b"""<?xml version="1.0"?>
<?adf version="1.0"?>
<adf>
  <prospect status="new">
    <id sequence="1" source="AutoTrader">AT-{n}</id>
    <requestdate>2026-03-10T09:58:00-05:00</requestdate>
    <vehicle interest="buy" status="new">
      <year>2024</year><make>Honda</make><model>Accord</model><trim>EX-L</trim>
      <vin>1HGCY1F39RA000123</vin><stock>H2401</stock>
      <price type="quote" currency="USD">32990</price>
    </vehicle>
    <customer>
      <contact>
        <name part="first">{first}</name>
        <name part="last">{last}</name>
        <email>{email}</email>
        <phone type="cellphone">{phone}</phone>
        <address><street line="1">12 Elm St</street><city>Denver</city><regioncode>CO</regioncode>
          <postalcode>80202</postalcode><country>US</country></address>
      </contact>
      <comments>Is it still available?
Can we contact you via text?: Yes
Trade Year: 2015
Trade Make: Toyota
Trade Model: Corolla
Trade Mileage: 98000</comments>
    </customer>
    <provider><name part="full">AutoTrader</name></provider>
  </prospect>
</adf>"""


def adf_bytes(
    n: int = 1,
    first: str = "Dana",
    last: str = "Driver",
    email: str = "dana@example.com",
    phone: str = "393-999-3922",
) -> bytes:
    return (
        ADF.decode()
        .replace("{n}", str(n))
        .replace("{first}", first)
        .replace("{last}", last)
        .replace("{email}", email)
        .replace("{phone}", phone)
        .encode()
    )


def json_lead(rooftop, *, now=T0, owner=None, **fields) -> Lead:
    """A lead from the JSON channel; `owner` overrides round robin so tests can say whose it is."""
    data = {"first_name": "Pat", "last_name": "Buyer", "emails": ["pat@example.com"]} | fields
    _, results = payload_receive(
        rooftop=rooftop, channel="json-api", content=json.dumps(data).encode(), now=now
    )
    lead = Lead.objects.get(pk=results[0].lead)
    if owner is not None:
        Lead.objects.filter(pk=lead.pk).update(owner=owner)
        lead.refresh_from_db()
    return lead


def adf_lead(rooftop, *, now=T0, **kwargs) -> Lead:
    _, results = payload_receive(
        rooftop=rooftop,
        channel="adf-http",
        content=adf_bytes(**kwargs),
        now=now,
        content_type="application/xml",
    )
    return Lead.objects.get(pk=results[0].lead)


@pytest.fixture
def make_lead(rooftop, bdc_team):
    """Factory: make_lead(first_name=..., owner=..., ...) -> Lead via the JSON channel."""
    counter = iter(range(1, 10_000))

    def make(**fields) -> Lead:
        n = next(counter)
        fields.setdefault("first_name", f"Pat{n}")
        fields.setdefault("emails", [f"pat{n}@example.com"])
        return json_lead(rooftop, **fields)

    return make


# --------------------------------------------------------------------------- the browser

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Mark a browser test module with this: Debian's Chromium driven by Playwright (never a download).
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)"
    ),
]


@pytest.fixture
def browser(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
    # thread with a running loop unless told that this is deliberate.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
