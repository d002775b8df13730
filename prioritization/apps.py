from django.apps import AppConfig


class PrioritizationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "prioritization"
