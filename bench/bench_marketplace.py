"""Marketplace benchmarks (issue 4), each beside a baseline measured in the same run:

- catalog page with 500 Blueprints: SQL queries (constant; ≤ 6 after a catalog change with page
  caching on and the shell's frame cached; also printed with nothing cached, everything cached and
  page caching off) and median ms, beside the same template rendered from an in-memory list;
- install request (API POST) → commit in the app repo, median ms, beside a bare `git commit` +
  push of the same files with the git CLI;
- sync of 500 Blueprint files (first load and a no-op re-sync);
- preview of a WordPress install with a new MariaDB (plan, wiring, files, diffs, price: the
  API's `POST …/applications/plan`), median ms, beside rendering the same files alone;
- rollback request (API POST) → commit, median ms, beside a bare `git commit` + push of the same
  files with the git CLI, the two timed alternately (each pair in the same moments).

For the install, the preview and the rollback it also prints the SQL statements one request sends
and the CPU time of this process per request (median): figures a loaded machine does not inflate
the way it inflates wall time.

Run: `python bench/bench_marketplace.py` (or `make bench` once merged). Self-contained on purpose.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import bare_git_commit_push, bare_git_committer, report, timed, timed_pairs

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINTS = 500
REPEAT = 30
INSTALLS = 20


def _doc(i: int) -> str:
    import yaml

    return yaml.safe_dump(
        {
            "apiVersion": "catalyst.openova.io/v1",
            "kind": "Blueprint",
            "metadata": {"name": f"bp-bench-{i:03d}"},
            "spec": {
                "version": "1.0.0",
                "card": {
                    "title": f"Bench app {i:03d}",
                    "summary": "A generated Blueprint for the catalog benchmark.",
                    "category": ["databases", "cms", "security", "observability", "ai"][i % 5],
                    "tags": [f"tag{i % 17}", f"group{i % 7}"],
                },
                "configSchema": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
                        "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                    },
                },
                "manifests": {
                    "chart": {
                        "repository": "https://charts.example.test",
                        "name": f"app{i}",
                        "version": "1.0.0",
                    }
                },
            },
        }
    )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalyst_portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    # the generated Blueprints take their charts from a repository the allow-list must name
    settings.CHART_REPOSITORIES = [*settings.CHART_REPOSITORIES, "https://charts.example.test"]
    with tempfile.TemporaryDirectory() as tmp:
        settings.GIT_ROOT = Path(tmp) / "git"
        settings.GITEA_URL = ""
        from catalyst_portal.celery import app as celery_app

        celery_app.conf.task_always_eager = True
        from gitops import sync as gitops_sync

        gitops_sync.backend.cache_clear()
        setup_test_environment()
        settings.ALLOWED_HOSTS = ["*"]
        old_name = connection.settings_dict["NAME"]
        # a database of our own: never clobber another run's test database
        connection.settings_dict.setdefault("TEST", {})["NAME"] = (
            f"test_bench_marketplace_{os.getpid()}" if connection.vendor != "sqlite" else None
        )
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            _run(Path(tmp))
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
            teardown_test_environment()


def _run(tmp: Path) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.template.loader import render_to_string
    from django.test import Client, RequestFactory

    from marketplace import loader
    from marketplace.models import Application, CatalogSource
    from marketplace.views import catalog_context
    from orgs import services as org_services
    from orgs.models import HostCluster, Sovereign

    sovereign = Sovereign.objects.create(fqdn="bench.local", display_name="Bench")
    HostCluster.objects.create(
        sovereign=sovereign, provider="hetzner", region="fsn", building_block="rtz", env_type="prod"
    )
    user = get_user_model().objects.create_user("bench", "bench@example.test", "x")
    org_services.create_organization(
        by=user,
        slug="bench-co",
        display_name="Bench",
        environments=[{"env_type": "prod", "regions": ["hz-fsn-rtz-prod"]}],
    )

    # -- sync of 500 files -------------------------------------------------------------------
    catalog_dir = tmp / "catalog"
    catalog_dir.mkdir()
    for i in range(BLUEPRINTS):
        (catalog_dir / f"bp-bench-{i:03d}.yaml").write_text(_doc(i))
    source = CatalogSource.objects.create(name="bench", kind="directory", location=str(catalog_dir))
    start = time.perf_counter()
    result = loader.sync_source(source)
    first = time.perf_counter() - start
    assert result["versions"] == BLUEPRINTS and result["errors"] == 0, result
    start = time.perf_counter()
    loader.sync_source(source, force=True)  # read and compared again (unforced, it is skipped)
    again = time.perf_counter() - start
    report(f"sync {BLUEPRINTS} Blueprint files (first load)", first, unit="s", target=5)
    report(f"re-sync {BLUEPRINTS} unchanged files", again, unit="s", target=5)

    # -- catalog page ------------------------------------------------------------------------
    client = Client()
    client.force_login(user)
    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    def queries_of_one_page() -> int:
        queries.clear()
        with connection.execute_wrapper(count):
            page = client.get("/marketplace/")
        assert page.status_code == 200 and page.content.count(b'class="card"') == 60
        return len(queries)

    from django.core.cache import cache
    from django.test import override_settings

    from marketplace.catalog_cache import CATALOG

    # as served with a shared Valkey (page caching on; this one process, so a local cache holds)
    with override_settings(PAGE_CACHE=True):
        cache.clear()
        cold = queries_of_one_page()  # nothing cached: the first page after a restart
        CATALOG.bump()
        changed = queries_of_one_page()  # the catalog changed since; the frame is still cached
        warm = queries_of_one_page()
    with override_settings(PAGE_CACHE=False):  # the embedded default: nothing cached
        plain = queries_of_one_page()
    page_ms = statistics.median(timed(lambda: client.get("/marketplace/"), repeat=REPEAT))
    searched = statistics.median(
        timed(lambda: client.get("/marketplace/?q=bench&category=cms"), repeat=REPEAT)
    )
    request = RequestFactory().get("/marketplace/")
    request.user = user
    context = catalog_context(user, {})
    context["blueprints"] = list(context["blueprints"])  # in memory from here on
    baseline = statistics.median(
        timed(
            lambda: render_to_string("marketplace/catalog.html", context, request=request),
            repeat=REPEAT,
        )
    )
    print(
        f"  catalog page SQL queries after a catalog change, the frame cached: {changed} "
        f"(target ≤ 6: {'OK' if changed <= 6 else 'MISSED'}) | first page, nothing cached: "
        f"{cold} | everything cached: {warm} | page caching off (no Valkey): {plain}; "
        f"{BLUEPRINTS} Blueprints, 60 cards per page"
    )
    report(
        "catalog page median",
        page_ms,
        target=40,
        baseline=baseline,
        baseline_name="template from an in-memory list",
    )
    report("catalog search + category median", searched, target=40)

    # -- install request → commit ------------------------------------------------------------
    url = "/api/v1/orgs/bench-co/environments/bench-co-prod/applications/"
    counter = iter(range(10_000))

    def install() -> None:
        n = next(counter)
        response = client.post(
            url,
            {"name": f"app{n}", "blueprint": "bp-bench-001", "values": {"replicas": 2}},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content

    install_ms = statistics.median(timed(install, repeat=INSTALLS))
    _cost("install request → commit", install)
    last = Application.objects.order_by("-pk").first()
    assert last is not None and last.last_commit_sha, "install did not commit"
    bare = _bare_baseline(last, tmp / "bare")
    report(
        "install request → commit median",
        install_ms,
        target=200,
        baseline=bare,
        baseline_name="bare git commit + push of the same files",
    )
    _wiring_and_rollback(client, tmp)


def _cost(name: str, fn: Any, repeat: int = 10) -> None:
    """What one call costs besides the wall time a loaded machine inflates: SQL statements sent
    (one call) and the CPU time of this process (median), printed."""
    from django.db import connection

    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        fn()
    cpu = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        cpu.append((time.process_time() - start) * 1000)
    print(f"  {name}: {len(statements)} SQL statements, CPU {statistics.median(cpu):.1f} ms")


def _files(app: Any) -> dict[str, str]:
    """The Application's files, its name in the paths replaced by APP (the bare baselines)."""
    from marketplace import manifests

    return {
        path.replace(f"/{app.name}/", "/APP/"): text
        for desired in manifests.trees(app)
        for path, text in desired.files.items()
    }


def _bare_baseline(app: Any, work: Path) -> float:
    """Median ms of a bare git commit + push of the Application's files (git CLI)."""
    return statistics.median(
        bare_git_commit_push(_files(app), work, placeholder="APP", repeat=INSTALLS)
    )


def _wiring_and_rollback(client: Any, tmp: Path) -> None:
    from django.conf import settings

    from marketplace import loader, manifests, plans
    from marketplace.models import Application, CatalogSource, InstallPlan

    starter = CatalogSource.objects.create(
        name="public", kind="directory", location=str(settings.CATALOG_DIR)
    )
    loader.sync_source(starter)
    apps = "/api/v1/orgs/bench-co/environments/bench-co-prod/applications/"
    body = {
        "name": "blog",
        "blueprint": "bp-wordpress",
        "values": {"domain": "blog.bench.test", "admin": {"email": "ops@bench.test"}},
        "dependencies": {"db": "new"},
    }

    names = iter(range(1_000_000))

    def preview() -> None:  # a new name each time: nothing rendered before is reused
        response = client.post(
            apps + "plan", {**body, "name": f"blog{next(names)}"}, content_type="application/json"
        )
        assert response.status_code == 200 and response.json()["wiring"], response.content

    preview_ms = statistics.median(timed(preview, repeat=REPEAT))
    _cost("WordPress install preview", preview)
    plan = InstallPlan.objects.order_by("-pk").first()
    assert plan is not None
    unsaved = plans.plan_applications(plan.environment, plan.data)
    peers = {a.name: a for a in unsaved}
    render_ms = statistics.median(
        timed(lambda: [manifests.trees(a, peers=peers) for a in unsaved], repeat=REPEAT)
    )
    report(
        "WordPress install preview with wiring median",
        preview_ms,
        target=50,
        baseline=render_ms,
        baseline_name="rendering the same files alone",
    )

    # rollback: install, resize (revision 2), then roll back to 1, 2, 1, ... through the API
    created = client.post(
        apps, {"name": "cache", "blueprint": "bp-valkey"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    client.post(apps + "cache/resize", {"size": "medium"}, content_type="application/json")
    targets = iter([1, 2] * 1000)

    def rollback() -> None:
        response = client.post(
            apps + "cache/rollback", {"revision": next(targets)}, content_type="application/json"
        )
        assert response.status_code == 200, response.content

    cache = Application.objects.get(name="cache")
    committer = bare_git_committer(_files(cache), tmp / "bare-rollback", placeholder="APP")
    # alternately, so that the machine's speed moves both alike (the bare commit spawns three
    # processes: it slows more than the portal when other work shares the cores)
    rolled, bare_samples = timed_pairs(rollback, committer, repeat=INSTALLS)
    rollback_ms, bare = statistics.median(rolled), statistics.median(bare_samples)
    _cost("rollback request → commit", rollback)
    cache.refresh_from_db()
    assert cache.last_commit_sha, "rollback did not commit"
    report(
        "rollback request → commit median",
        rollback_ms,
        target=2 * bare,
        baseline=bare,
        baseline_name="bare git commit + push of the same files, alternately",
    )


if __name__ == "__main__":
    main()
