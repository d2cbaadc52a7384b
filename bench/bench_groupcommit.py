"""Group commit of Organization syncs: a burst of Organizations delivered to catalyst-config.

`DATABASE_URL=postgres://postgres@127.0.0.1:5432/cat_i12gc .venv/bin/python -m bench
bench_groupcommit` (BENCH_GC_ORGS=1000, BENCH_GC_WORKERS=4, BENCH_GC_SIZES=100,20000)

- **Burst**: BENCH_GC_ORGS Organizations are created (the service, one Environment each) while the
  broker is away, so their outbox rows wait; then BENCH_GC_WORKERS worker threads (one database
  connection each) take the rows' messages in order and run the real task
  (`orgs.tasks.sync_organization_task`: claim, render, validate, commit, mark delivered) against
  the local Git backend in a fresh GIT_ROOT, re-sending rows that are due again as the sweeper
  would, until every row is done. Timed from the first message to the last row done; then every
  Organization's files are checked to be added by exactly one commit. The baseline is the same
  burst in the same run with GIT_GROUP_COMMIT_MAX=1 (a commit per row, as before).
- **Per-row Git cost** at BENCH_GC_SIZES Organizations already in the repo: 200 new
  Organizations' files committed one `sync` each, beside `sync_many` in groups of 50 (Git only:
  bare YAML, validation off, as in bench_scale).
"""

from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import report, setup_django, throwaway_database

ORGS = int(os.environ.get("BENCH_GC_ORGS", "1000"))
WORKERS = int(os.environ.get("BENCH_GC_WORKERS", "4"))
SIZES = [int(n) for n in os.environ.get("BENCH_GC_SIZES", "100,20000").split(",") if n]
TIMEOUT = 600.0


def _seed_orgs() -> None:
    from unittest import mock

    from django.contrib.auth import get_user_model

    from orgs import services
    from orgs.models import HostCluster, Sovereign

    sov = Sovereign.objects.create(fqdn="bench.local")
    cluster = HostCluster.objects.create(
        sovereign=sov, provider="hetzner", region="fsn", building_block="rtz", env_type="prod"
    )
    users = [
        get_user_model().objects.create_user(f"bench{n}", f"bench{n}@example.test", "x" * 12)
        for n in range(4)
    ]
    with mock.patch("core.outbox.send", return_value=False):  # the broker is away
        for n in range(ORGS):
            services.create_organization(
                by=users[n % len(users)],
                slug=f"burst-{n:05d}",
                display_name=f"Burst {n}",
                environments=[{"env_type": "prod", "regions": [cluster.name]}],
            )


def _reset(git_root: Path) -> None:
    from django.conf import settings
    from django.utils import timezone

    from core.models import OutboxItem
    from gitops import sync as gitops_sync
    from orgs.models import Environment, Organization

    settings.GIT_ROOT = git_root
    gitops_sync.backend.cache_clear()
    OutboxItem.objects.update(
        done_at=None,
        attempts=0,
        claimed_until=None,
        claim_token="",
        last_error="",
        available_at=timezone.now(),
    )
    for model in (Organization, Environment):
        model.objects.update(delivery_state="pending", last_commit_sha="", delivery_error="")


def _burst(group_max: int, git_root: Path) -> tuple[float, int, Counter[int]]:
    """Deliver every pending row with WORKERS threads; (seconds, commits, adds per org file)."""
    from django.conf import settings
    from django.db import connection

    from core.models import OutboxItem
    from orgs.tasks import sync_organization_task

    _reset(git_root)
    settings.GIT_GROUP_COMMIT_MAX = group_max
    messages: queue.Queue[int] = queue.Queue()
    for pk in OutboxItem.objects.order_by("pk").values_list("pk", flat=True):
        messages.put(pk)
    finished = threading.Event()
    gate = threading.Barrier(WORKERS + 1)

    def worker() -> None:
        try:
            gate.wait()
            while not finished.is_set():
                try:
                    pk = messages.get(timeout=0.2)
                except queue.Empty:
                    continue
                sync_organization_task(pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    while time.perf_counter() - start < TIMEOUT:
        if not OutboxItem.objects.pending().exists():
            break
        if messages.empty():  # the sweeper: re-send rows due again (a retry, a lost race)
            for pk in OutboxItem.objects.due().values_list("pk", flat=True):
                messages.put(pk)
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    finished.set()
    for thread in threads:
        thread.join(30)
    connection.close()
    assert not OutboxItem.objects.pending().exists(), "not every row was delivered in time"
    repo = git_root / "system" / "catalyst-config.git"
    log = subprocess.run(
        ["git", "--git-dir", str(repo), "log", "--format=%H", "--name-only", "--diff-filter=A"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    adds = Counter(
        int(p.split("/")[1].removeprefix("burst-"))
        for p in log
        if p.startswith("organizations/") and p.endswith("/organization.yaml")
    )
    commits = int(
        subprocess.run(
            ["git", "--git-dir", str(repo), "rev-list", "--count", "main"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return seconds, commits - 1, adds  # less the initial commit


def burst() -> None:
    from core.models import OutboxItem
    from orgs.models import Environment, Organization

    start = time.perf_counter()
    _seed_orgs()
    print(f"  seeded {ORGS} Organizations in {time.perf_counter() - start:.1f} s", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-gc-"))
    results = {}
    for name, group_max in (("one commit a row", 1), ("group commit", 50)):
        seconds, commits, adds = _burst(group_max, work / name.replace(" ", "-"))
        exactly_once = set(adds) == set(range(ORGS)) and set(adds.values()) == {1}
        delivered = Organization.objects.filter(delivery_state="delivered").count()
        envs = Environment.objects.filter(delivery_state="delivered").count()
        attempts = Counter(OutboxItem.objects.values_list("attempts", flat=True))
        print(
            f"  {name} (GIT_GROUP_COMMIT_MAX={group_max}): {seconds:.1f} s, {commits} commits, "
            f"{ORGS / seconds:.1f} orgs/s, exactly once: {exactly_once}, delivered orgs "
            f"{delivered}/{ORGS}, environments {envs}, attempts {dict(sorted(attempts.items()))}",
            flush=True,
        )
        assert exactly_once and delivered == ORGS
        results[name] = seconds
    report(
        f"{ORGS} Organizations in a burst, all in Git ({WORKERS} workers)",
        results["group commit"],
        unit="s",
        target=60,
        baseline=results["one commit a row"],
        baseline_name="one commit a row",
    )


def _org_yaml(slug: str) -> str:
    return f"kind: Organization\nmetadata:\n  name: {slug}\nspec:\n  displayName: {slug}\n"


def per_row_cost() -> None:
    from gitops import sync as gitops_sync
    from gitops.backend import Author
    from gitops.local import LocalGitBackend
    from gitops.sync import Desired

    gitops_sync.validate_files = lambda files: None  # bare YAML: Git only, as bench_scale
    author = Author("bench", "bench@example.test")
    rows = 200

    def desired(slug: str) -> Desired:
        root = f"organizations/{slug}/"
        return Desired(
            owner="system",
            repo="catalyst-config",
            branch="main",
            root=root,
            files={f"{root}organization.yaml": _org_yaml(slug)},
        )

    for count in SIZES:
        timings = {}
        for mode in ("one", "group"):
            git = LocalGitBackend(Path(tempfile.mkdtemp(prefix="bench-gc-size-")), committer=author)
            git.ensure_org("system")
            git.ensure_repo("system", "catalyst-config")
            git.commit(
                "system",
                "catalyst-config",
                "main",
                changes={
                    f"organizations/o{i:05d}/organization.yaml": _org_yaml(f"o{i:05d}").encode()
                    for i in range(count)
                },
                expected_head=git.head("system", "catalyst-config", "main"),
                author=author,
                message="seed",
            )
            new = [desired(f"new-{mode}-{i:04d}") for i in range(rows)]
            wall, cpu = time.perf_counter(), time.process_time()
            if mode == "one":
                for d in new:
                    gitops_sync.sync(d, author=author, message="m", git=git)
            else:
                for i in range(0, rows, 50):
                    outcomes = gitops_sync.sync_many(
                        new[i : i + 50], compose=lambda _c: (author, "m"), git=git
                    )
                    assert not any(isinstance(o, Exception) for o in outcomes)
            timings[mode] = (
                (time.perf_counter() - wall) * 1000 / rows,
                (time.process_time() - cpu) * 1000 / rows,
            )
        for index, kind in ((0, "wall"), (1, "CPU")):
            report(
                f"Git cost a row at {count} orgs, groups of 50 ({kind})",
                timings["group"][index],
                baseline=timings["one"][index],
                baseline_name="a commit a row",
            )


def main() -> None:
    os.environ.setdefault("GIT_ROOT", tempfile.mkdtemp(prefix="bench-gc-git-"))
    setup_django()
    from django.db import connection

    print(f"  load average before: {os.getloadavg()}", flush=True)
    if connection.vendor != "postgresql":
        print("  (SQLite: run with DATABASE_URL=postgres://… for the figures in BENCHMARKS.md)")
    with throwaway_database():
        burst()
    per_row_cost()
    print(f"  load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
