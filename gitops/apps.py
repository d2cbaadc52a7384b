from django.apps import AppConfig


class GitopsConfig(AppConfig):
    name = "gitops"
    verbose_name = "GitOps: the one door to Git and Flux"

    def ready(self) -> None:
        from core import health, metrics

        from . import flux, sync

        health.register("git", lambda: sync.backend().ping())
        metrics.register(flux.WatchLagCollector())
