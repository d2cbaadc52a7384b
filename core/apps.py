from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core: audit, outbox, API tokens"

    def ready(self) -> None:
        from . import oidc  # noqa: F401 (connects the sign-in signal receiver)
