"""The intake API over HTTP: statuses, answers, and that nothing sent is ever lost."""

from __future__ import annotations

import json

import pytest

from pursuit.conftest import CORPUS, FIXTURES
from pursuit.intake.models import LeadSource, Payload
from pursuit.intake.tests.test_intake import adf
from pursuit.leads.models import Lead

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/adf-corpus is not here")


@pytest.fixture
def post(client, source_token):
    _, token = source_token

    def send(path: str, body: bytes, content_type: str = "application/xml", token: str = token):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return client.post(f"/api/v1/{path}", data=body, content_type=content_type, **headers)

    return send


def test_adf_lead_is_created_then_recognised(post, bdc_team):
    first = post("intake/adf", adf("Ann", "Lee", "ann@example.com"))
    assert first.status_code == 201
    body = first.json()
    assert body == {"lead": body["lead"], "customer": body["customer"], "matched": False, "status": "created"}
    again = post("intake/adf", adf("Ann", "Lee", "ann@example.com", vehicle="2025 Honda Pilot"))
    assert again.status_code == 201
    assert again.json() == {
        "lead": body["lead"],
        "customer": body["customer"],
        "matched": True,
        "status": "re-inquiry",
    }
    lead = Lead.objects.get(pk=body["lead"])
    assert lead.source.name == "Cars.com" and lead.payload.channel == "adf-http"


def test_several_prospects_answer_with_a_list(post, bdc_team):
    response = post("intake/adf", (FIXTURES / "two-prospects-resend.xml").read_bytes())
    assert response.status_code == 201
    assert isinstance(response.json(), list) and len(response.json()) == 2


@pytest.mark.parametrize("token", ["", "pst_wrong"])
def test_bad_token_is_401_and_nothing_is_stored(post, token):
    response = post("intake/adf", adf("Ann", "Lee", "ann@example.com"), token=token)
    assert response.status_code == 401
    assert "token" in response.json()["error"]
    assert not Payload.objects.exists()


def test_inactive_source_is_refused(post, source_token):
    source, _ = source_token
    LeadSource.objects.filter(pk=source.pk).update(active=False)
    assert post("intake/adf", adf("Ann", "Lee", "ann@example.com")).status_code == 401


def test_malformed_xml_is_422_with_the_reason_and_line_and_is_kept(post):
    body = b'<?xml version="1.0"?>\n<adf>\n<prospect>\n<customer>\n</prospect>\n</adf>'
    response = post("intake/adf", body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["line"] and "line" in answer["error"] and answer["payload"]
    payload = Payload.objects.get(pk=answer["payload"])
    assert payload.status == "failed" and bytes(payload.content) == body and payload.reason == answer["error"]


@needs_corpus
def test_external_entities_are_refused_and_never_read(post):
    response = post("intake/adf", (CORPUS / "seorylie-6.xml").read_bytes())
    assert response.status_code == 422
    assert "entit" in response.json()["error"].lower()
    assert "root:" not in response.content.decode()


def test_entity_expansion_bomb_is_refused(post):
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE adf [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b"<adf><prospect><customer><contact><name>&c;</name></contact></customer></prospect></adf>"
    )
    response = post("intake/adf", bomb)
    assert response.status_code == 422 and "entit" in response.json()["error"].lower()


def test_oversized_payload_is_413(post, settings):
    settings.PURSUIT_MAX_ADF_BYTES = 1000
    response = post("intake/adf", adf("Ann", "Lee", "ann@example.com") + b" " * 2000)
    assert response.status_code == 413
    assert "larger" in response.json()["error"]


def test_empty_body_is_422(post):
    response = post("intake/adf", b"")
    assert response.status_code == 422


def test_email_endpoint_takes_a_raw_message(post, bdc_team):
    response = post("intake/email", (FIXTURES / "quoted-printable-body.eml").read_bytes(), "message/rfc822")
    assert response.status_code == 201, response.content
    no_adf = post("intake/email", (FIXTURES / "no-adf.eml").read_bytes(), "message/rfc822")
    assert no_adf.status_code == 422 and "no ADF" in no_adf.json()["error"]


def test_json_lead_endpoint(post, bdc_team):
    body = {
        "full_name": "Ann B Lee",
        "emails": ["ann@example.com"],
        "type": "internet",
        "vehicles": [{"year": 2024, "make": "Honda", "model": "Civic"}],
        "external_id": "w-1",
    }
    response = post("leads", json.dumps(body).encode(), "application/json")
    assert response.status_code == 201
    lead = Lead.objects.get(pk=response.json()["lead"])
    assert (lead.customer.first_name, lead.customer.middle_name, lead.customer.last_name) == (
        "Ann",
        "B",
        "Lee",
    )
    bad = post(
        "leads", json.dumps({"emails": ["x@example.com"], "color": "red"}).encode(), "application/json"
    )
    assert bad.status_code == 422
    assert "color" in bad.json()["error"]


def test_read_a_lead_only_of_the_tokens_rooftop(post, client, bdc_team, other_rooftop):
    created = post("intake/adf", adf("Ann", "Lee", "ann@example.com")).json()
    source = LeadSource.objects.get(name="Cars.com")
    token = source.new_token()
    source.save()
    ok = client.get(f"/api/v1/leads/{created['lead']}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ok.status_code == 200 and ok.json()["customer_name"] == "Ann Lee"
    other = LeadSource(rooftop=other_rooftop, name="Other")
    other_token = other.new_token()
    other.save()
    denied = client.get(f"/api/v1/leads/{created['lead']}", HTTP_AUTHORIZATION=f"Bearer {other_token}")
    assert denied.status_code == 404


def test_openapi_schema_documents_the_json_lead(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/intake/adf" in schema["paths"]
    assert "LeadIn" in schema["components"]["schemas"]
