from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "pursuit.intake"
    label = "intake"
    verbose_name = "Lead intake"
