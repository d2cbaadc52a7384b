from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations and Environments"

    def ready(self) -> None:
        # register the grant-delivery hook, the last-owner guard and the Organization directory
        from core.versioned import SHELL, SITE

        # (services.on_flux_changes records what Flux reports; orgs/status.py reads and renders it)
        from . import members, services  # noqa: F401  (members registers its hooks)

        services.connect()
        SITE.renew_on_write("orgs.Sovereign")  # pages cache its name
        # every page's frame lists Organizations and Environments (their slugs, names, and
        # whether archived: a bulk move from pending to provisioning changes none of that)
        SHELL.renew_on_write("orgs.Organization")
        SHELL.renew_on_write("orgs.Environment")
