"""The public unsubscribe page: no login, works from any mail client for as long as the link
exists (CAN-SPAM asks 30 days, CASL 60; ours never expire)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from pursuit.compliance.services import unsubscribe, unsubscribe_read
from pursuit.lib import clock


@csrf_exempt  # RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" with no session
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    read = unsubscribe_read(token)
    if read is None:
        return render(request, "compliance/unsubscribe.html", {"state": "unknown"}, status=404)
    if request.method == "GET":
        # A GET never unsubscribes: link scanners and previews follow links.
        return render(request, "compliance/unsubscribe.html", {"state": "ask", "address": read[1]})
    customer = unsubscribe(token=token, at=clock.now())
    if customer is None:
        return render(request, "compliance/unsubscribe.html", {"state": "unknown"}, status=404)
    rooftop = customer.rooftop
    return render(
        request,
        "compliance/unsubscribe.html",
        {"state": "done", "address": read[1], "rooftop": rooftop, "everywhere": rooftop.opt_out_everywhere},
    )
