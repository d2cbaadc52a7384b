"""Organization creation, request → commit in the repo; no-op re-sync; beside a bare git commit + push.

Embedded: `make bench` (SQLite, in-process tasks). With services:
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/catalyst VALKEY_URL=redis://127.0.0.1:6379/0 make bench`
(PostgreSQL + Valkey + a real Celery worker process).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import median, report, setup_django, throwaway_database, timed

N = 30


def _head(path: Path) -> bytes | None:
    from dulwich.repo import Repo

    try:
        with Repo(str(path)) as repo:
            return repo.refs.as_dict().get(b"refs/heads/main")
    except Exception:
        return None


def _bare_git_baseline(files: dict[str, str], work: Path) -> list[float]:
    """Median cost of the same files committed and pushed with the git CLI (a clone + bare remote)."""
    remote, clone = work / "remote.git", work / "clone"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
    env_args = ["-c", "user.name=bench", "-c", "user.email=bench@example.test"]

    counter = iter(range(10_000))

    def commit_and_push() -> None:
        n = next(counter)
        for path, text in files.items():
            target = clone / path.replace("ORG", f"org{n}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        subprocess.run(["git", *env_args, "-C", str(clone), "add", "-A"], check=True)
        subprocess.run(
            ["git", *env_args, "-C", str(clone), "commit", "-q", "-m", f"org {n}"], check=True
        )
        subprocess.run(
            ["git", "-C", str(clone), "push", "-q", "origin", "HEAD:main"],
            check=True,
            capture_output=True,
        )

    return timed(commit_and_push, repeat=N)


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
        baseline = _bare_git_baseline(files, work)
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
