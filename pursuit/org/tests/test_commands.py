"""`pursuit add-source`: a source and a token that a lead provider can use at once."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from pursuit.conftest import FIXTURES
from pursuit.intake.models import LeadSource
from pursuit.leads.models import Lead

ADF = (FIXTURES / "namespaced-optin-trade.xml").read_bytes()
ADF_PATH = "/api/v1/intake/adf"


def add_source(*args) -> tuple[str, str]:
    """Run the command; (its output, the token it printed)."""
    out = io.StringIO()
    call_command("add_source", *args, stdout=out, stderr=io.StringIO())
    output = out.getvalue()
    tokens = [line for line in output.splitlines() if line.startswith("pst_")]
    assert len(tokens) == 1, output  # the token on a line of its own
    return output, tokens[0]


def post_adf(client, token: str, body: bytes = ADF):
    return client.post(
        ADF_PATH, data=body, content_type="application/xml", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_printed_token_authenticates_adf_intake(client, rooftop):
    output, token = add_source("Cars.com")
    source = LeadSource.objects.get(name="Cars.com")
    assert (source.rooftop, source.lead_type, source.active) == (rooftop, "internet", True)
    response = post_adf(client, token)
    assert response.status_code == 201, response.content
    assert Lead.objects.get(pk=response.json()["lead"]).source == source
    curl = [line for line in output.splitlines() if line.startswith("curl ")]
    assert len(curl) == 1
    assert (
        f"Authorization: Bearer {token}" in curl[0] and "http://127.0.0.1:8000/api/v1/intake/adf" in curl[0]
    )


def test_existing_source_gets_a_new_token(client, rooftop):
    _, old = add_source("Cars.com")
    output, new = add_source("cars.com", "--type", "other")
    assert new != old and "new token" in output
    assert LeadSource.objects.count() == 1
    assert LeadSource.objects.get().lead_type == "other"
    assert post_adf(client, old).status_code == 401
    assert post_adf(client, new).status_code == 201


def test_rooftop_by_name_or_id(rooftop, other_rooftop):
    add_source("Website", "--rooftop", "faraway ford", "--type", "internet")
    add_source("Phone", "--rooftop", str(other_rooftop.pk), "--type", "phone")
    add_source("Website")
    assert {(s.name, s.rooftop_id, s.lead_type) for s in LeadSource.objects.all()} == {
        ("Website", other_rooftop.pk, "internet"),
        ("Phone", other_rooftop.pk, "phone"),
        ("Website", rooftop.pk, "internet"),
    }


def test_unknown_rooftop(rooftop):
    with pytest.raises(
        CommandError, match="No rooftop is named or numbered 'Nowhere Nissan'.*Lakeside Honda"
    ):
        call_command("add_source", "Website", "--rooftop", "Nowhere Nissan")


def test_no_rooftop_yet(db):
    with pytest.raises(CommandError, match="no rooftop yet.*pursuit load-demo.*admin"):
        call_command("add_source", "Website")
    assert not LeadSource.objects.exists()


def test_bad_type_is_refused(rooftop):
    with pytest.raises(CommandError):
        call_command("add_source", "Website", "--type", "carrier-pigeon")
