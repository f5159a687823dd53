from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "pursuit.web"
    label = "web"
