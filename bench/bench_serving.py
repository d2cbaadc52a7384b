"""Serving under load: `manage.py serve` as production runs it, driven over loopback HTTP.

`VALKEY_URL=redis://127.0.0.1:6379/<db> python -m bench bench_serving`

The bench starts a PostgreSQL of its own (initdb in a temporary directory, `max_connections=100`,
so a connection leak hits this server and nobody else's), loads the demo data, makes signed-in
sessions and starts the server in a subprocess, then measures, each beside a baseline of the
same run:

- signed-in users browsing (Organizations, an Organization, the catalog, a Blueprint, the
  Applications list), each pausing 1–3 s between pages: p50/p95 latency, error rate, peak
  PostgreSQL connections, worker memory at start and end — with the old defaults (one worker,
  persistent connections `conn_max_age=60`, no pool) as the baseline;
- maximum throughput (closed loop, no pauses) on the catalog page beside the bare liveness view,
  alternately (three rounds of 5 s each)
  served by the same server;
- 50 simultaneous sign-ins (password, Argon2id): wall time until all are signed in, beside 50
  accounts whose stored hashes are PBKDF2's (Django's default, which the portal used before:
  they sign in and are re-hashed) on the same server. `BENCH_SERVING_ONLY=logins` runs only this.

Knobs: BENCH_SERVING_USERS (100), BENCH_SERVING_SECONDS (60; the issue's target run is 300),
BENCH_SERVING_BASELINE_USERS (20).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, p95, report

USERS = int(os.environ.get("BENCH_SERVING_USERS", "100"))
SECONDS = int(os.environ.get("BENCH_SERVING_SECONDS", "60"))
BASELINE_USERS = int(os.environ.get("BENCH_SERVING_BASELINE_USERS", "20"))
LOGINS = 50
PASSWORD = "catalyst-demo"
PAGES = [
    "/orgs/",
    "/orgs/acme-shop/",
    "/marketplace/",
    "/marketplace/bp-wordpress/",
    "/marketplace/apps/",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_postgres(work: Path) -> Iterator[str]:
    """A PostgreSQL server of this bench's own on a free loopback port; its URL."""
    bindir = next(Path("/usr/lib/postgresql").glob("*/bin"), None)
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    data, port = work / "pgdata", _free_port()
    data.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(work, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off"
    )
    log = work / "postgres.log"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
    subprocess.run(  # the server's output goes to its log: a pipe would be held open forever
        [*as_postgres, *start],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        subprocess.run(
            [
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "bench",
            ],
            check=True,
        )
        yield f"postgres://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def _seed() -> tuple[list[str], list[str], list[str]]:
    """Demo data; session cookies of alice for the browsing users; usernames for the sign-ins
    (hashed with the portal's hasher, and with PBKDF2 for the baseline)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("load_demo", verbosity=0)
    alice = get_user_model().objects.get(username="alice")
    sessions = []
    for _ in range(max(USERS, BASELINE_USERS)):
        client = Client()
        client.force_login(alice)
        sessions.append(client.cookies["sessionid"].value)
    hashed = make_password(PASSWORD)  # the portal's hasher (Argon2id)
    legacy = make_password(PASSWORD, hasher="pbkdf2_sha256")
    names = [f"signin-{i:02d}" for i in range(LOGINS)]
    legacy_names = [f"pbkdf2-{i:02d}" for i in range(LOGINS)]
    get_user_model().objects.bulk_create(
        [get_user_model()(username=n, email=f"{n}@bench.test", password=hashed) for n in names]
        + [
            get_user_model()(username=n, email=f"{n}@bench.test", password=legacy)
            for n in legacy_names
        ]
    )
    return sessions, names, legacy_names


class Server:
    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "ERROR", **env},
        )
        import httpx

        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "manage.py serve exited"
            assert time.monotonic() < deadline, "manage.py serve did not start"
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{self.url}/healthz", timeout=2)
                break
            threading.Event().wait(0.2)

    def rss_mb(self) -> float:
        """Resident memory of the server's processes (the supervisor and its workers)."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            pids += [int(p) for p in children.read_text().split()]
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ConnectionSampler:
    """Peak number of connections the server holds on PostgreSQL, sampled every 0.5 s."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True)
        self.peak = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(0.5):
            row = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'bench' "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
            self.peak = max(self.peak, int(row[0]) if row else 0)

    def stop(self) -> int:
        self.stopped.set()
        self.thread.join()
        self.conn.close()
        return self.peak


def warm_up(url: str, cookie: str, *, workers: int) -> None:
    """Each worker process compiles its templates and fills its caches on first use: load every
    page a few times per worker before measuring (connections are spread over the workers)."""
    import httpx

    for _ in range(3 * workers):
        with httpx.Client(base_url=url, timeout=60, cookies={"sessionid": cookie}) as client:
            for path in PAGES:
                client.get(path)


def browse(url: str, sessions: list[str], *, users: int, seconds: float) -> dict[str, Any]:
    """`users` people each loading a page, pausing 1–3 s, for `seconds`."""
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def person(cookie: str, seed: int) -> None:
        rng = random.Random(seed)
        pause = threading.Event()
        pause.wait(rng.uniform(0, 3))  # people do not arrive in the same millisecond
        with httpx.Client(base_url=url, timeout=60, cookies={"sessionid": cookie}) as client:
            while time.monotonic() < deadline:
                start = time.perf_counter()
                try:
                    status = client.get(rng.choice(PAGES)).status_code
                except httpx.TransportError:
                    status = 0
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1
                pause.wait(rng.uniform(1, 3))

    threads = [
        threading.Thread(target=person, args=(sessions[i], i), daemon=True) for i in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(statuses.values())
    errors = total - statuses[200]
    return {
        "requests": total,
        "errors": errors,
        "error_rate": 100 * errors / total if total else 100.0,
        "p50": median(latencies) if latencies else 0.0,
        "p95": p95(latencies) if latencies else 0.0,
        "statuses": dict(statuses),
    }


def closed_loop(url: str, path: str, cookie: str, *, clients: int, seconds: float) -> float:
    """Requests per second with `clients` clients sending back to back (no pauses)."""
    import httpx

    done = Counter[str]()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop() -> None:
        with httpx.Client(base_url=url, timeout=60, cookies={"sessionid": cookie}) as client:
            while time.monotonic() < deadline:
                ok = client.get(path).status_code == 200
                with lock:
                    done["ok" if ok else "error"] += 1

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not done["error"], f"{done['error']} errors on {path}"
    return done["ok"] / (time.perf_counter() - start)


def simultaneous_logins(url: str, names: list[str]) -> float:
    """Seconds from the moment `names` all press "Sign in" until the last is signed in."""
    import httpx

    clients = []
    for _ in names:
        client = httpx.Client(base_url=url, timeout=120)
        client.get("/login/")
        clients.append(client)
    gate = threading.Barrier(len(names) + 1)
    outcomes: list[int] = []

    def sign_in(client: Any, name: str) -> None:
        gate.wait()
        response = client.post(
            "/login/",
            data={
                "username": name,
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Referer": f"{url}/login/"},
        )
        outcomes.append(response.status_code)

    threads = [
        threading.Thread(target=sign_in, args=(c, n)) for c, n in zip(clients, names, strict=True)
    ]
    for thread in threads:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    for client in clients:
        client.close()
    assert outcomes.count(302) == len(names), Counter(outcomes)
    return seconds


def _browse_report(label: str, result: dict[str, Any], peak: int, rss: tuple[float, float]) -> None:
    print(
        f"  {label}: {result['requests']} requests, errors {result['errors']} "
        f"({result['error_rate']:.1f}%), p50 {result['p50']:.0f} ms, p95 {result['p95']:.0f} ms, "
        f"peak PostgreSQL connections {peak}, memory {rss[0]:.0f} → {rss[1]:.0f} MB "
        f"{result['statuses']}",
        flush=True,
    )


def _run_config(
    label: str, env: dict[str, str], work: Path, sessions: list[str], *, users: int, seconds: float
) -> dict[str, Any]:
    server = Server(env, work)
    sampler = ConnectionSampler(env["DATABASE_URL"].split("?")[0])
    try:
        warm_up(
            server.url, sessions[0], workers=int(env.get("PORTAL_WEB_WORKERS", os.cpu_count() or 1))
        )
        before = server.rss_mb()
        # memory through the run (ten samples), to tell warm-up from a growth trend
        series: list[float] = [before]
        done = threading.Event()

        def sample_memory() -> None:
            while not done.wait(seconds / 10):
                series.append(server.rss_mb())

        memory = threading.Thread(target=sample_memory, daemon=True)
        memory.start()
        try:
            result = browse(server.url, sessions, users=users, seconds=seconds)
        finally:
            done.set()
            memory.join()
        result["rss"] = (before, server.rss_mb())
        series.append(result["rss"][1])
        print(f"  memory through the run (MB): {' '.join(f'{m:.0f}' for m in series)}", flush=True)
    finally:
        result_peak = sampler.stop()
        result_server = server
    result["peak"] = result_peak
    result["server"] = result_server
    _browse_report(label, result, result_peak, result["rss"])
    return result


def _logins(env: dict[str, str], work: Path, names: list[str], legacy: list[str]) -> None:
    server = Server(env, work)
    try:
        logins = simultaneous_logins(server.url, names)
        pbkdf2 = simultaneous_logins(server.url, legacy)
    finally:
        server.stop()
    report(
        f"{LOGINS} simultaneous sign-ins (Argon2id)",
        logins,
        unit="s",
        target=5,
        baseline=pbkdf2,
        baseline_name="the same with PBKDF2 hashes (re-hashed on the way)",
    )


def main() -> None:
    if not os.environ.get("VALKEY_URL"):
        print("  skipped: set VALKEY_URL (several worker processes share Valkey)")
        return
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        with private_postgres(work) as database_url:
            os.environ["DATABASE_URL"] = database_url
            os.environ["GIT_ROOT"] = str(work / "git")
            os.environ["PORTAL_VAR_DIR"] = str(work / "var")
            # the server checks the sessions made here: one secret for both
            os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
            sys.path.insert(0, str(ROOT))
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "catalyst_portal.settings")
            os.environ.setdefault("LOG_LEVEL", "WARNING")
            import django

            django.setup()
            sessions, names, legacy_names = _seed()
            from django.db import connections

            connections.close_all()
            now = {"DATABASE_URL": database_url}
            old = {
                "DATABASE_URL": f"{database_url}?conn_max_age=60",
                "PORTAL_DB_POOL": "false",
                "PORTAL_WEB_WORKERS": "1",
            }
            if os.environ.get("BENCH_SERVING_ONLY") == "logins":
                _logins(now, work, names, legacy_names)
                return
            short = max(20, SECONDS // 2)

            print(f"  -- {BASELINE_USERS} users, {short} s, 1-3 s pauses --", flush=True)
            base = _run_config(
                "old defaults (1 worker, conn_max_age=60)",
                old,
                work,
                sessions,
                users=BASELINE_USERS,
                seconds=short,
            )
            base["server"].stop()
            same = _run_config("now", now, work, sessions, users=BASELINE_USERS, seconds=short)
            same["server"].stop()
            report(
                f"p95 at {BASELINE_USERS} users",
                same["p95"],
                baseline=base["p95"],
                baseline_name="old defaults",
            )

            print(f"  -- {USERS} users, {SECONDS} s, 1-3 s pauses --", flush=True)
            full = _run_config("now", now, work, sessions, users=USERS, seconds=SECONDS)
            server = full["server"]
            try:
                report(f"p95 at {USERS} users", full["p95"], target=300)
                report(f"error rate at {USERS} users", full["error_rate"], unit="%", target=0)

                # alternately, three rounds each: both see the machine in the same state (the
                # 5-minute run just ended; other work on the cores comes and goes)
                rounds = [
                    (
                        closed_loop(server.url, "/marketplace/", sessions[0], clients=8, seconds=5),
                        closed_loop(server.url, "/healthz", sessions[0], clients=8, seconds=5),
                    )
                    for _ in range(3)
                ]
                catalog = sum(c for c, _ in rounds) / len(rounds)
                bare = sum(b for _, b in rounds) / len(rounds)
                print(
                    "  closed-loop rounds (catalog / bare req/s): "
                    + ", ".join(f"{c:.1f} / {b:.1f}" for c, b in rounds),
                    flush=True,
                )
                report(
                    "catalog page, closed loop",
                    catalog,
                    unit="req/s",
                    baseline=bare,
                    baseline_name="bare view (/healthz), same server",
                )
                report(
                    "catalog throughput as a share of the bare view's",
                    100 * catalog / bare,
                    unit="%",
                )
            finally:
                server.stop()
            _logins(now, work, names, legacy_names)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
