from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "pursuit.compliance"
    verbose_name = "Compliance"
    default_auto_field = "django.db.models.BigAutoField"
