import time

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import pre_migrate


class PortfolioConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "portfolio"

    def ready(self) -> None:
        from integrations import bulkload
        from portfolio import datacache

        # Schema housekeeping, not business logic: see bulkload.before_migrate.
        pre_migrate.connect(bulkload.before_migrate, sender=self)
        # The idle timeout's clock starts at sign-in (config.middleware.SessionLifetime...).
        user_logged_in.connect(_session_started, dispatch_uid="portfolio.session_started")
        # Writes make cached page values stale (portfolio/datacache.py).
        datacache.signals_connect()


def _session_started(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session["_seen"] = int(time.time())
