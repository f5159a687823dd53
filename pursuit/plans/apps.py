from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "pursuit.plans"
    verbose_name = "Follow-up plans"
    default_auto_field = "django.db.models.BigAutoField"
