from django.apps import AppConfig


class TextingConfig(AppConfig):
    name = "pursuit.texting"
    verbose_name = "Text messages"
    default_auto_field = "django.db.models.BigAutoField"
