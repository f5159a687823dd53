"""The inbound-mail webhook (Mailgun's route format): signed, stored, or refused."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from pursuit.lib import clock
from pursuit.outreach.inbound import email_inbound, mailgun_signature_valid, message_from_mailgun


@csrf_exempt
@require_POST
def email_inbound_hook(request: HttpRequest) -> HttpResponse:
    fields = request.POST.dict()
    now = clock.now()
    if not mailgun_signature_valid(
        fields.get("timestamp", ""), fields.get("token", ""), fields.get("signature", ""), now=now
    ):
        return HttpResponse("signature does not match", status=403, content_type="text/plain")
    inbound = email_inbound(message=message_from_mailgun(fields), channel="webhook", now=now)
    # 200 tells Mailgun not to retry; an unmatched email is kept too (shown to admins).
    return HttpResponse(f"stored {inbound.pk}", content_type="text/plain")
