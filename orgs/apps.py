from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations and Environments"

    def ready(self) -> None:
        # register the grant-delivery hook, the last-owner guard and the Organization directory
        from core.versioned import SITE

        from . import members, services, status  # noqa: F401

        status.connect()
        SITE.renew_on_write("orgs.Sovereign")  # pages cache its name
