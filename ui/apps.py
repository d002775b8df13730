from django.apps import AppConfig


class UiConfig(AppConfig):
    """The pages that compose every domain: the TAM's dashboard, the account page, the
    manager's team view and the dashboard's bulk actions. It owns no models; it reads each
    domain's selectors and panels and is the only app allowed to import them all
    (tests/unit/test_layers.py)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "ui"
