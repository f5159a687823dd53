from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "pursuit.outreach"
    label = "outreach"
    verbose_name = "Outreach: templates and messages"
