"""The text provider's webhooks: inbound texts and delivery reports. Signed, or refused."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from pursuit.lib import clock
from pursuit.org.models import Rooftop
from pursuit.texting.provider import signature_valid
from pursuit.texting.services import text_inbound, text_status

log = logging.getLogger(__name__)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _signed(request: HttpRequest) -> bool:
    # The provider signs the URL it was given: PURSUIT_BASE_URL must be the public address.
    url = settings.BASE_URL + request.get_full_path()
    return signature_valid(url, request.POST.dict(), request.headers.get("X-Twilio-Signature", ""))


@csrf_exempt
@require_POST
def text_inbound_hook(request: HttpRequest) -> HttpResponse:
    if not _signed(request):
        return HttpResponse("signature does not match", status=403, content_type="text/plain")
    to = request.POST.get("To", "")
    rooftop = Rooftop.objects.filter(text_number=to).first() if to else None
    if rooftop is None:
        log.warning("a text for %r, which is no rooftop's number", to)
        return HttpResponse(f"no rooftop texts from {to}", status=404, content_type="text/plain")
    text_inbound(
        rooftop=rooftop,
        from_number=request.POST.get("From", ""),
        body=request.POST.get("Body", ""),
        provider_id=request.POST.get("MessageSid", ""),
        now=clock.now(),
    )
    # Replies go out through the API (so they are recorded and gated), never in the answer.
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
@require_POST
def text_status_hook(request: HttpRequest) -> HttpResponse:
    if not _signed(request):
        return HttpResponse("signature does not match", status=403, content_type="text/plain")
    text_status(
        provider_id=request.POST.get("MessageSid", ""),
        status=request.POST.get("MessageStatus", ""),
        error=request.POST.get("ErrorCode", ""),
    )
    return HttpResponse(status=204)
