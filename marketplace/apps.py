from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace: Blueprints and Applications"

    def ready(self) -> None:
        # follow what Flux reports about each Application (marketplace/status.py)
        from . import services, status, usage  # noqa: F401  (usage registers billing's source)

        status.connect()
        services.connect()
