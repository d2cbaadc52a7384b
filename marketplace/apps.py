from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace: Blueprints and Applications"

    def ready(self) -> None:
        # follow what Flux reports about each Application (services.on_flux_changes records it,
        # marketplace/status.py reads and renders it)
        from . import catalog_cache, services, usage  # noqa: F401  (usage registers billing's source)

        services.connect()
        catalog_cache.connect()  # every Blueprint write renews the cached catalog cards
