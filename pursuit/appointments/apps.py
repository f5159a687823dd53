from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    name = "pursuit.appointments"
    verbose_name = "Appointments"
    default_auto_field = "django.db.models.BigAutoField"
