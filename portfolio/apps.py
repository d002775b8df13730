from django.apps import AppConfig
from django.db.models.signals import pre_migrate


class PortfolioConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "portfolio"

    def ready(self) -> None:
        from portfolio.sync import bulkload

        # Schema housekeeping, not business logic: see bulkload.before_migrate.
        pre_migrate.connect(bulkload.before_migrate, sender=self)
