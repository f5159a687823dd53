from django.contrib import admin
from django.urls import include, path

from pursuit.api.api import api
from pursuit.compliance.views import unsubscribe_page
from pursuit.outreach.views import email_inbound_hook
from pursuit.texting.views import text_inbound_hook, text_status_hook

admin.site.site_header = "Pursuit administration"
admin.site.site_title = "Pursuit"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("unsubscribe/<str:token>/", unsubscribe_page, name="unsubscribe"),
    path("webhooks/text/", text_inbound_hook, name="text-inbound"),
    path("webhooks/text/status/", text_status_hook, name="text-status"),
    path("webhooks/email/", email_inbound_hook, name="email-inbound"),
    path("", include("pursuit.web.urls")),
]
