from django.apps import AppConfig


class GitopsConfig(AppConfig):
    name = "gitops"
    verbose_name = "GitOps: the one door to Git and Flux"

    def ready(self) -> None:
        from core import health

        from . import sync

        health.register("git", lambda: sync.backend().ping())
