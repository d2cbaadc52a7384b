"""Shared bench plumbing: Django set-up, a throwaway database, timing and reporting."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalyst_portal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


@contextmanager
def throwaway_database() -> Iterator[None]:
    """Create a fresh test database (test_<name>) for the run and drop it afterwards."""
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def timed(fn: Callable[[], Any], *, repeat: int, warmup: int = 2) -> list[float]:
    """Milliseconds per call."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def run_concurrently(
    work: list[Any], attempt: Callable[[Any], str], *, workers: int
) -> tuple[float, Any]:
    """`attempt(item)` over `work` from `workers` threads (one DB connection each), started
    together; returns (seconds, Counter of outcomes). An exception counts as an outcome."""
    import queue
    import threading
    from collections import Counter

    from django.db import connections

    items: queue.Queue[Any] = queue.Queue()
    for item in work:
        items.put(item)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    gate = threading.Barrier(workers + 1)

    def worker() -> None:
        try:
            gate.wait()
            while True:
                try:
                    item = items.get_nowait()
                except queue.Empty:
                    return
                try:
                    result = attempt(item)
                except Exception as exc:  # counted, so the run's assertion shows it
                    result = f"error: {type(exc).__name__}: {exc}"
                with lock:
                    outcomes[result] += 1
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, outcomes


def timed_cpu(fn: Callable[[], Any], *, repeat: int, warmup: int = 2) -> list[float]:
    """Milliseconds of this process's CPU per call: on a loaded machine (other work on the same
    cores) it shows the call's own cost, which the wall-clock figure hides behind waiting."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append((time.process_time() - start) * 1000)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def report(
    name: str,
    value: float,
    *,
    unit: str = "ms",
    target: float | None = None,
    baseline: float | None = None,
    baseline_name: str = "baseline",
) -> None:
    parts = [f"{name}: {value:.2f} {unit}"]
    if target is not None:
        parts.append(f"(target ≤ {target:g} {unit}: {'OK' if value <= target else 'MISSED'})")
    if baseline is not None:
        ratio = value / baseline if baseline else float("inf")
        parts.append(f"| {baseline_name}: {baseline:.2f} {unit} | ratio {ratio:.2f}x")
    print("  " + " ".join(parts), flush=True)


def bare_git_commit_push(
    files: dict[str, str], work: Path, *, placeholder: str, repeat: int
) -> list[float]:
    """Baseline: the same files committed and pushed with the git CLI (a clone of a bare remote),
    `placeholder` in the paths replaced by a fresh name each time. Milliseconds per commit + push."""
    return timed(bare_git_committer(files, work, placeholder=placeholder), repeat=repeat)


def timed_pairs(
    first: Callable[[], Any], second: Callable[[], Any], *, repeat: int, warmup: int = 2
) -> tuple[list[float], list[float]]:
    """Milliseconds per call of `first` and of `second`, called alternately (first, second,
    first, …): each pair runs in the same moments, so a machine that slows down or speeds up
    during the run moves a figure and its baseline alike."""
    for _ in range(warmup):
        first()
        second()
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        for fn, samples in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1000)
    return a, b


def bare_git_committer(
    files: dict[str, str], work: Path, *, placeholder: str
) -> Callable[[], None]:
    """One bare `git commit` + push of `files` per call (see `bare_git_commit_push`)."""
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    remote, clone = work / "baseline-remote.git", work / "baseline-clone"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.test"]
    counter = iter(range(1_000_000))

    def commit_and_push() -> None:
        n = next(counter)
        for path, text in files.items():
            target = clone / path.replace(placeholder, f"{placeholder.lower()}{n}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        subprocess.run(["git", *ident, "-C", str(clone), "add", "-A"], check=True)
        subprocess.run(
            ["git", *ident, "-C", str(clone), "commit", "-q", "-m", f"bench {n}"], check=True
        )
        subprocess.run(
            ["git", "-C", str(clone), "push", "-q", "origin", "HEAD:main"],
            check=True,
            capture_output=True,
        )

    return commit_and_push
