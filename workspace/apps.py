from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """The signed-in user's own tools: the to-do inbox, global search, saved views."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "workspace"
