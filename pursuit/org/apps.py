from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "pursuit.org"
    label = "org"
    verbose_name = "Dealer groups, rooftops and staff"
