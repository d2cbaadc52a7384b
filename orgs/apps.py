from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations and Environments"

    def ready(self) -> None:
        from . import status

        status.connect()
