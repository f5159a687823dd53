from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "pursuit.leads"
    label = "leads"
    verbose_name = "Customers and leads"
