from django.apps import AppConfig


class PrioritizationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "prioritization"

    def ready(self) -> None:
        from portfolio.signals import accounts_unprioritised
        from prioritization import receivers

        accounts_unprioritised.connect(
            receivers.prioritise_new_accounts, dispatch_uid="prioritization.new_accounts"
        )
