"""The JSON API (django-ninja, OpenAPI at /api/v1/docs and /api/v1/openapi.json).

Lead providers authenticate with their source's token: `Authorization: Bearer pst_...`.
Every payload is stored before it is parsed; the answer says what became of it. No request ever
gets an HTML error page: every failure is JSON with a plain reason.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer

from pursuit.intake.json_parse import LeadIn
from pursuit.intake.models import LeadSource, Payload, token_hash
from pursuit.intake.parsed import PayloadError
from pursuit.intake.services import IntakeError, payload_process, payload_store
from pursuit.leads.models import Lead
from pursuit.lib import clock

log = logging.getLogger(__name__)


class SourceToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> LeadSource | None:
        if not token:
            return None
        return (
            LeadSource.objects.select_related("rooftop")
            .filter(token_hash=token_hash(token.strip()), active=True)
            .first()
        )


api = NinjaAPI(
    title="Pursuit",
    version="1",
    urls_namespace="api",
    auth=SourceToken(),
    description="Lead intake and leads. Authenticate with a lead source's token (Bearer).",
)


class IntakeOut(Schema):
    lead: int
    customer: int
    matched: bool
    status: str


class ErrorOut(Schema):
    error: str
    line: int | None = None
    payload: int | None = None


@api.exception_handler(AuthenticationError)
def _unauthorised(request, exc):
    return api.create_response(
        request, {"error": "missing or unknown source token (Authorization: Bearer ...)"}, status=401
    )


@api.exception_handler(HttpError)
def _http_error(request, exc):
    return api.create_response(request, {"error": str(exc)}, status=exc.status_code)


@api.exception_handler(Exception)
def _unexpected(request, exc):
    log.exception("API request failed: %s %s", request.method, request.path)
    return api.create_response(request, {"error": "internal error; nothing you sent was lost"}, status=500)


def _body(request: HttpRequest, limit: int) -> bytes:
    """The request body, refusing one over `limit` bytes before reading it when the length is
    declared. Oversized bodies are not stored: they are refused, so storage cannot be flooded."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"the payload is larger than {limit} bytes")
    body = request.body
    if len(body) > limit:
        raise HttpError(413, f"the payload is larger than {limit} bytes")
    if not body.strip():
        raise HttpError(422, "the payload is empty")
    return body


def _receive(request: HttpRequest, channel: str, limit: int):
    source: LeadSource = request.auth
    content = _body(request, limit)
    payload = payload_store(
        rooftop=source.rooftop,
        source=source,
        channel=channel,
        content=content,
        now=clock.now(),
        content_type=request.content_type or "",
    )
    try:
        results = payload_process(payload=payload, now=clock.now())
    except PayloadError as exc:
        return Status(422, {"error": str(exc), "line": exc.line, "payload": payload.pk})
    except IntakeError as exc:
        return Status(500, {"error": f"kept for re-processing: {exc}", "payload": payload.pk})
    answers = [r.as_api() for r in results]
    return Status(201, answers[0] if len(answers) == 1 else answers)


_XML_BODY = {
    "requestBody": {"required": True, "content": {"application/xml": {"schema": {"type": "string"}}}}
}
_EMAIL_BODY = {
    "requestBody": {"required": True, "content": {"message/rfc822": {"schema": {"type": "string"}}}}
}
_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LeadIn"}}},
    }
}
_RESPONSES = {201: IntakeOut | list[IntakeOut], 401: ErrorOut, 413: ErrorOut, 422: ErrorOut, 500: ErrorOut}


@api.post("/intake/adf", response=_RESPONSES, openapi_extra=_XML_BODY, summary="Receive an ADF/XML lead")
def intake_adf(request: HttpRequest):
    """One ADF document (one or several prospects). Answers one object per prospect: a list
    when the document held several."""
    return _receive(request, Payload.Channel.ADF_HTTP, settings.PURSUIT_MAX_ADF_BYTES)


@api.post(
    "/intake/email", response=_RESPONSES, openapi_extra=_EMAIL_BODY, summary="Receive an email carrying ADF"
)
def intake_email(request: HttpRequest):
    """A raw RFC 822 message with an ADF lead in its body or an attachment."""
    return _receive(request, Payload.Channel.EMAIL_HTTP, settings.PURSUIT_MAX_EMAIL_BYTES)


@api.post("/leads", response=_RESPONSES, openapi_extra=_JSON_BODY, summary="Create a lead from JSON")
def lead_create(request: HttpRequest):
    """A lead as JSON (schema LeadIn)."""
    return _receive(request, Payload.Channel.JSON_API, settings.PURSUIT_MAX_ADF_BYTES)


class VehicleOut(Schema):
    role: str
    condition: str
    year: int | None
    make: str
    model: str
    trim: str
    vin: str
    stock: str


class LeadOut(Schema):
    id: int
    customer: int
    customer_name: str
    status: str
    type: str
    owner: str | None
    received_at: str
    auto_response_at: str | None
    first_attempt_at: str | None
    vehicles: list[VehicleOut]


@api.get("/leads/{lead_id}", response={200: LeadOut, 401: ErrorOut, 404: ErrorOut}, summary="Read a lead")
def lead_read(request: HttpRequest, lead_id: int):
    """A lead of the token's rooftop (404 for any other)."""
    lead = (
        Lead.objects.select_related("customer", "owner")
        .prefetch_related("vehicles")
        .filter(pk=lead_id, rooftop=request.auth.rooftop)
        .first()
    )
    if lead is None:
        return Status(404, {"error": "no such lead"})

    def iso(value):
        return value.isoformat() if value else None

    return Status(
        200,
        {
            "id": lead.pk,
            "customer": lead.customer_id,
            "customer_name": str(lead.customer),
            "status": lead.status,
            "type": lead.type,
            "owner": lead.owner.display_name if lead.owner else None,
            "received_at": iso(lead.received_at),
            "auto_response_at": iso(lead.auto_response_at),
            "first_attempt_at": iso(lead.first_attempt_at),
            "vehicles": [
                {
                    "role": v.role,
                    "condition": v.condition,
                    "year": v.year,
                    "make": v.make,
                    "model": v.model,
                    "trim": v.trim,
                    "vin": v.vin,
                    "stock": v.stock,
                }
                for v in lead.vehicles.all()
            ],
        },
    )


# Publish the JSON lead schema in the OpenAPI document (the body is read raw, so the payload can
# be stored before it is validated).
_original_schema = api.get_openapi_schema


def _schema_with_lead_in(*args, **kwargs):
    schema = _original_schema(*args, **kwargs)
    definitions = LeadIn.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(definitions.pop("$defs", {}))
    components["LeadIn"] = definitions
    return schema


api.get_openapi_schema = _schema_with_lead_in
