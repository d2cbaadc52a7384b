from django.apps import AppConfig


class RbacConfig(AppConfig):
    name = "rbac"
    verbose_name = "RBAC: tiers, grants and the one permission check"

    def ready(self) -> None:
        from . import tiers

        tiers.load()  # an unknown tier or action stops start-up with a clear message
