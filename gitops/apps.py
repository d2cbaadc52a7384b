from django.apps import AppConfig


class GitopsConfig(AppConfig):
    name = "gitops"
    verbose_name = "GitOps: the one door to Git and Flux"

    def ready(self) -> None:
        from core import health, metrics
        from core.versioned import SITE

        from . import flux, sync

        health.register("git", lambda: sync.backend().ping())
        metrics.register(flux.WatchLagCollector())
        SITE.renew_on_write("gitops.FluxCluster")  # pages cache whether any cluster reports back
