from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts: sign-in, sign-up, sessions, API tokens, single sign-on"

    def ready(self) -> None:
        from . import (
            schema,  # noqa: F401  (registers the API token scheme with drf-spectacular)
            sessions,  # noqa: F401  (connects the sign-in signal receiver)
        )
