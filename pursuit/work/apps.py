from django.apps import AppConfig


class WorkConfig(AppConfig):
    name = "pursuit.work"
    label = "work"
    verbose_name = "Timed work and notifications"
