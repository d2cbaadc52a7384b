from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core: audit, outbox, events"

    def ready(self) -> None:
        from catalyst_portal.celery import app

        # Register every app's `tasks` module now, so outbox rows can be sent by task name from any process.
        app.autodiscover_tasks(force=True)
