from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "pursuit.api"
    label = "api"
