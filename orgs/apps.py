from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations and Environments"

    def ready(self) -> None:
        # register the grant-delivery hook, the last-owner guard and the Organization directory
        from . import members, services, status  # noqa: F401

        status.connect()
