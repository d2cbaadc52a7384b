"""Organization creation, request → commit in the repo; no-op re-sync; beside a bare git commit + push.

Embedded: `make bench` (SQLite, in-process tasks). With services:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/catalyst VALKEY_URL=redis://127.0.0.1:6379/0 make bench`
(PostgreSQL + Valkey + a real Celery worker process).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import (
    bare_git_commit_push,
    median,
    report,
    setup_django,
    throwaway_database,
    timed,
)

N = 30


def _head(path: Path) -> bytes | None:
    from dulwich.repo import Repo

    try:
        with Repo(str(path)) as repo:
            return repo.refs.as_dict().get(b"refs/heads/main")
    except Exception:
        return None


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from catalyst_portal.celery import app
    from core.models import OutboxItem
    from gitops import sync as gitops_sync
    from orgs import manifests
    from orgs.models import HostCluster, Organization, Sovereign
    from orgs.services import deliver_organization

    work = Path(tempfile.mkdtemp(prefix="bench-orgs-"))
    settings.GIT_ROOT = work / "git"
    gitops_sync.backend.cache_clear()
    services_mode = connection.vendor == "postgresql" and bool(settings.VALKEY_URL)
    with throwaway_database():
        sov = Sovereign.objects.create(fqdn="bench.local")
        for region in ("fsn", "hel"):
            HostCluster.objects.create(
                sovereign=sov,
                provider="hetzner",
                region=region,
                building_block="rtz",
                env_type="prod",
            )
        user = get_user_model().objects.create_user("bench", "bench@example.test", "x" * 12)
        client = Client()
        client.force_login(user)
        repo = settings.GIT_ROOT / "system" / "catalyst-config.git"
        proc = None
        if services_mode:
            from tests.worker import start_worker

            settings.CELERY_TASK_DEFAULT_QUEUE = f"bench-{work.name}"
            proc = start_worker(git_root=settings.GIT_ROOT, log_path=work / "worker.log")
            settings.CELERY_TASK_ALWAYS_EAGER = False
            app.conf.task_always_eager = False
        else:
            settings.CELERY_TASK_ALWAYS_EAGER = True
            app.conf.task_always_eager = True
        counter = iter(range(10_000))

        def create() -> None:
            n = next(counter)
            before = _head(repo)
            body = {
                "slug": f"bench-{n}",
                "display_name": f"Bench {n}",
                "environments": [{"env_type": "prod", "regions": ["hz-fsn-rtz-prod"]}],
            }
            response = client.post("/api/v1/orgs/", body, content_type="application/json")
            assert response.status_code == 201, response.content
            deadline = time.monotonic() + 30
            while _head(repo) == before:
                if time.monotonic() > deadline:
                    raise RuntimeError("no commit within 30 s")
                time.sleep(0.001)

        try:
            samples = timed(create, repeat=N)
        finally:
            if proc is not None:
                from tests.worker import stop_worker

                stop_worker(proc)
                app.conf.task_always_eager = True
        org = Organization.objects.get(slug="bench-0")
        files = {
            p.replace("bench-0", "ORG"): t
            for p, t in manifests.organization_tree(org).files.items()
        }
        baseline = bare_git_commit_push(files, work, placeholder="ORG", repeat=N)
        mode = (
            "PostgreSQL + Valkey + Celery worker"
            if services_mode
            else "embedded (SQLite, in-process tasks)"
        )
        target = 300 if services_mode else 150
        print(f"  mode: {mode}; {N} organizations")
        report(
            "org creation request → commit, median",
            median(samples),
            target=target,
            baseline=median(baseline),
            baseline_name="bare git commit + push",
        )

        item = OutboxItem.objects.create(
            task_name="orgs.tasks.sync_organization_task", key=str(org.pk)
        )
        noop = timed(lambda: deliver_organization(org_id=org.pk, item=item), repeat=N)
        report(
            "no-op re-sync, median",
            median(noop),
            target=20,
            baseline=median(baseline),
            baseline_name="bare git commit + push",
        )


if __name__ == "__main__":
    main()
