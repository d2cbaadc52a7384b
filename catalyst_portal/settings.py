"""Catalyst Portal settings: one file, every knob read from the environment.

With no environment at all the portal runs embedded: SQLite and Git repos under var/, tasks run
in-process after commit, local-memory cache. README.md lists every variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .env import (
    database_from_url,
    env_bool,
    env_int,
    env_int_list,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
        return key
    # Embedded default: a random key kept under var/ so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "mozilla_django_oidc",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "template_partials",
    "core",
    "gitops",
    "rbac",
    "accounts",
    "orgs",
    "marketplace",
    "billing",
]

MIDDLEWARE = [
    "core.middleware.MetricsMiddleware",
    "core.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.AccountSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "core.middleware.UnavailableMiddleware",
]

ROOT_URLCONF = "catalyst_portal.urls"
WSGI_APPLICATION = "catalyst_portal.wsgi.application"
ASGI_APPLICATION = "catalyst_portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "catalyst_portal.context_processors.portal",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# --- Database --------------------------------------------------------------------------------
DATABASES = {
    "default": database_from_url("DATABASE_URL", sqlite_default=VAR_DIR / "portal.sqlite3")
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests with background threads (the Flux watcher) need a file: an in-memory shared-cache
    # database answers "table is locked" to concurrent writers instead of waiting.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}
else:
    # PostgreSQL: every process keeps a small pool of connections (psycopg 3's pool) that each
    # request borrows and returns, so connections are bounded by workers x PORTAL_DB_POOL_MAX
    # whatever the number of requests in flight. Behind PgBouncer in transaction mode a session
    # spans no transaction: no server-side cursors, no prepared statements.
    DB_POOL = env_bool("PORTAL_DB_POOL", True)
    DB_POOL_MIN = env_int("PORTAL_DB_POOL_MIN", 1, minimum=0)
    DB_POOL_MAX = env_int("PORTAL_DB_POOL_MAX", 8, minimum=1)
    DB_POOL_TIMEOUT_SECONDS = env_int("PORTAL_DB_POOL_TIMEOUT_SECONDS", 10, minimum=1)
    DB_PGBOUNCER = env_bool("PORTAL_DB_PGBOUNCER", False)
    if DB_POOL_MIN > DB_POOL_MAX:
        raise ImproperlyConfigured(
            f"PORTAL_DB_POOL_MIN={DB_POOL_MIN} exceeds PORTAL_DB_POOL_MAX={DB_POOL_MAX}."
        )
    _db = DATABASES["default"]
    if DB_POOL:
        if _db["CONN_MAX_AGE"]:
            raise ImproperlyConfigured(
                "DATABASE_URL sets conn_max_age but PORTAL_DB_POOL is on: a pooled connection "
                "is returned after each request (set PORTAL_DB_POOL=false to keep connections)."
            )
        _db["OPTIONS"]["pool"] = {
            "min_size": DB_POOL_MIN,
            "max_size": DB_POOL_MAX,
            "timeout": DB_POOL_TIMEOUT_SECONDS,
        }
    if DB_PGBOUNCER:
        _db["DISABLE_SERVER_SIDE_CURSORS"] = True
        _db["OPTIONS"]["prepare_threshold"] = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Valkey: broker, cache, sessions ---------------------------------------------------------
VALKEY_URL = env_url("VALKEY_URL", schemes=("redis", "rediss", "valkey", "valkeys", "unix"))
# Celery/kombu speaks redis:// to Valkey (there is no valkey:// transport).
_REDIS_URL = VALKEY_URL.replace("valkey://", "redis://", 1).replace("valkeys://", "rediss://", 1)
# A Valkey Cluster (any one node's address; the client finds the others): the cache, rate limits
# and the live-status fan-out go there. Celery's broker stays the single node of VALKEY_URL
# (kombu has no cluster transport); without VALKEY_URL tasks run in-process.
VALKEY_CLUSTER_URL = env_url("VALKEY_CLUSTER_URL", schemes=("redis", "rediss", "valkey", "valkeys"))
_CLUSTER_URL = VALKEY_CLUSTER_URL.replace("valkey://", "redis://", 1).replace(
    "valkeys://", "rediss://", 1
)
# Where the state every process shares lives (cache, rate limits, SSE fan-out): the cluster, else
# the single node, else nowhere (embedded: in the process).
SHARED_VALKEY_URL = _CLUSTER_URL or _REDIS_URL
SHARED_VALKEY_CLUSTER = bool(_CLUSTER_URL)

if SHARED_VALKEY_URL:
    # Rate-limit counters and short locks; while Valkey is down they fall back to a cache local
    # to the process (core/cache.py) instead of failing the request.
    CACHES = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": SHARED_VALKEY_URL,
            "OPTIONS": {"cluster": SHARED_VALKEY_CLUSTER},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions live in the database only (one primary-key read a request): a Valkey outage signs
# nobody out, and a session ended while Valkey was down cannot come back from a stale cache.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Pages cache what they render from rarely changing data (the catalog's cards, the shell's
# Sovereign name) under versions kept on Valkey (core/versioned.py). Only with a shared Valkey:
# a process-local cache would not see another process's changes.
PAGE_CACHE = env_bool("PORTAL_PAGE_CACHE", bool(SHARED_VALKEY_URL))

# --- Serving (`manage.py serve`: uvicorn) -----------------------------------------------------
# When a dependency is down: the Retry-After of 503 answers, and how long /readyz waits for each
# check (database, Valkey, Git).
RETRY_AFTER_SECONDS = env_int("PORTAL_RETRY_AFTER_SECONDS", 30, minimum=1)
READINESS_TIMEOUT_SECONDS = env_int("PORTAL_READINESS_TIMEOUT_SECONDS", 3, minimum=1)
# Worker processes: sync views run in threads, and one process is one core (the GIL). Several
# workers need the shared services (Valkey for cache, rate limits and live-status fan-out):
# embedded runs keep one.
WEB_WORKERS = env_int(
    "PORTAL_WEB_WORKERS", (os.cpu_count() or 1) if SHARED_VALKEY_URL else 1, minimum=1
)
if WEB_WORKERS > 1 and not SHARED_VALKEY_URL:
    raise ImproperlyConfigured(
        f"PORTAL_WEB_WORKERS={WEB_WORKERS} needs VALKEY_URL (or VALKEY_CLUSTER_URL): without it "
        "the cache, rate limits and live-status events live in one process."
    )
# Prometheus metrics (core/metrics.py): /metrics answers a bearer token, or a client in one of
# these networks (loopback by default; empty: the token only). Processes without a web server
# (Celery worker, watch_flux) serve the same on PORTAL_METRICS_PORT when it is set.
METRICS_TOKEN = env_str("PORTAL_METRICS_TOKEN")
METRICS_NETWORKS = env_list("PORTAL_METRICS_NETWORKS", ["127.0.0.1/32", "::1/128"])
for _net in METRICS_NETWORKS:
    try:
        ipaddress.ip_network(_net, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"PORTAL_METRICS_NETWORKS: {_net!r} is not a network (10.0.0.0/8, ::1/128)."
        ) from None
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("PORTAL_METRICS_TOKEN must be at least 16 characters long.")
METRICS_PORT = env_int("PORTAL_METRICS_PORT", 0, minimum=0)
METRICS_HOST = env_str("PORTAL_METRICS_HOST", "0.0.0.0")  # noqa: S104 - a pod is scraped on its IP
# On SIGTERM the server stops accepting, finishes requests in flight for this long, then exits.
WEB_SHUTDOWN_GRACE_SECONDS = env_int("PORTAL_SHUTDOWN_GRACE_SECONDS", 20, minimum=1)
# The ASGI server's bound on connections in flight per worker: beyond it new ones get 503.
WEB_CONCURRENCY_LIMIT = env_int("PORTAL_WEB_CONCURRENCY_LIMIT", 1000, minimum=1)

CELERY_BROKER_URL = _REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = env_bool("PORTAL_TASKS_EAGER", not _REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- Delivery (outbox) -----------------------------------------------------------------------
# A claimed row is leased for OUTBOX_LEASE_SECONDS and the lease renewed every
# OUTBOX_HEARTBEAT_SECONDS while the work runs: a dead worker's row is due again within the lease.
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 15, minimum=2)
OUTBOX_HEARTBEAT_SECONDS = env_int(
    "OUTBOX_HEARTBEAT_SECONDS", max(1, OUTBOX_LEASE_SECONDS // 3), minimum=1
)
if OUTBOX_HEARTBEAT_SECONDS >= OUTBOX_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"OUTBOX_HEARTBEAT_SECONDS={OUTBOX_HEARTBEAT_SECONDS} must be shorter than "
        f"OUTBOX_LEASE_SECONDS={OUTBOX_LEASE_SECONDS}."
    )
OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 5, minimum=0)
OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 300, minimum=1)
OUTBOX_SWEEP_INTERVAL_SECONDS = env_int("OUTBOX_SWEEP_INTERVAL_SECONDS", 5, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {
        "task": "core.tasks.sweep_outbox_task",
        "schedule": OUTBOX_SWEEP_INTERVAL_SECONDS,
    },
}

# --- Git -------------------------------------------------------------------------------------
GIT_ROOT = Path(env_str("GIT_ROOT", str(VAR_DIR / "git"))).resolve()
GITEA_URL = env_url("GITEA_URL", schemes=("http", "https"))
GITEA_TOKEN = env_str("GITEA_TOKEN")
GITEA_TIMEOUT_SECONDS = env_int("GITEA_TIMEOUT_SECONDS", 10, minimum=1)
if GITEA_URL and not GITEA_TOKEN:
    raise ImproperlyConfigured(
        "GITEA_URL is set but GITEA_TOKEN is empty: the Gitea backend needs a token."
    )
GIT_SYSTEM_OWNER = env_str("GIT_SYSTEM_OWNER", "system")
GIT_CONFIG_REPO = env_str("GIT_CONFIG_REPO", "catalyst-config")
GIT_CONFIG_BRANCH = env_str("GIT_CONFIG_BRANCH", "main")
# Git is a surface too: the portal's own address (for the push webhooks it creates on Gitea),
# their signing secret, and how often every Application's branch is read back (missed hooks).
PORTAL_URL = env_url("PORTAL_URL", schemes=("http", "https"))
GITEA_WEBHOOK_SECRET = env_str("GITEA_WEBHOOK_SECRET")
GIT_RECONCILE_INTERVAL_SECONDS = env_int("GIT_RECONCILE_INTERVAL_SECONDS", 300, minimum=5)
# The pushes Gitea reported (gitops.GitPush) are pruned by that reconcile after this many days.
GIT_PUSH_RETENTION_DAYS = env_int("GIT_PUSH_RETENTION_DAYS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["reconcile-git"] = {
    "task": "marketplace.tasks.reconcile_git_task",
    "schedule": GIT_RECONCILE_INTERVAL_SECONDS,
}
# Group commit: one delivery task takes up to this many due Organization syncs (distinct
# Organizations) and commits them to catalyst-config together; 1 = a commit per sync.
GIT_GROUP_COMMIT_MAX = env_int("GIT_GROUP_COMMIT_MAX", 50, minimum=1)
GIT_COMMITTER_NAME = env_str("GIT_COMMITTER_NAME", "Catalyst Portal")
GIT_COMMITTER_EMAIL = env_str("GIT_COMMITTER_EMAIL", "portal@catalyst.local")
FLUX_CRDS_DIR = Path(
    env_str("FLUX_CRDS_DIR", str(BASE_DIR.parent / "shared" / "specs" / "flux-crds"))
)

# --- Events ----------------------------------------------------------------------------------
NATS_URL = env_url("NATS_URL", schemes=("nats", "tls", "ws", "wss"))
NATS_SUBJECT_PREFIX = env_str("NATS_SUBJECT_PREFIX", "catalyst")

# --- Flux watch and live status (gitops/flux.py, gitops/events.py, gitops/streams.py) ---
# Which clusters `manage.py watch_flux` watches: the in-cluster service account, or kubeconfig
# contexts (entries `context` or `cluster-name=context`; empty: the current context).
FLUX_IN_CLUSTER = env_bool("FLUX_IN_CLUSTER", False)
FLUX_KUBECONFIG = env_str("FLUX_KUBECONFIG")
FLUX_CONTEXTS = env_list("FLUX_CONTEXTS")
FLUX_CLUSTER_NAME = env_str("FLUX_CLUSTER_NAME", "management")
FLUX_LABEL_SELECTOR = env_str("FLUX_LABEL_SELECTOR", "openova.io/managed-by=flux")
FLUX_CONFIG_KUSTOMIZATION = env_str("FLUX_CONFIG_KUSTOMIZATION", "flux-system/catalyst-config")
FLUX_WATCH_TIMEOUT_SECONDS = env_int("FLUX_WATCH_TIMEOUT_SECONDS", 300, minimum=1)
FLUX_CONNECT_TIMEOUT_SECONDS = env_int("FLUX_CONNECT_TIMEOUT_SECONDS", 10, minimum=1)
FLUX_BACKOFF_BASE_MS = env_int("FLUX_BACKOFF_BASE_MS", 500, minimum=1)
FLUX_BACKOFF_MAX_SECONDS = env_int("FLUX_BACKOFF_MAX_SECONDS", 60, minimum=1)
FLUX_HEARTBEAT_SECONDS = env_int("FLUX_HEARTBEAT_SECONDS", 30, minimum=1)
# A relist reads this many objects per request (`limit`/`continue`).
FLUX_LIST_PAGE_SIZE = env_int("FLUX_LIST_PAGE_SIZE", 500, minimum=1)
FLUX_STALE_SECONDS = env_int("FLUX_STALE_SECONDS", 2 * FLUX_WATCH_TIMEOUT_SECONDS + 60, minimum=1)
# The Kubernetes Events Flux records for its objects (core/v1, one watch per Flux kind by
# involvedObject.kind), shown on the Application page; how many are kept per object.
FLUX_WATCH_EVENTS = env_bool("FLUX_WATCH_EVENTS", True)
FLUX_EVENTS_PER_OBJECT = env_int("FLUX_EVENTS_PER_OBJECT", 20, minimum=1)
# Leader election (gitops/leader.py): one active watcher per cluster, the others stand by and
# poll every renew interval; a dead leader is replaced within lease + renew seconds.
FLUX_LEASE_SECONDS = env_int("FLUX_LEASE_SECONDS", 15, minimum=2)
FLUX_LEASE_RENEW_SECONDS = env_int(
    "FLUX_LEASE_RENEW_SECONDS", max(1, FLUX_LEASE_SECONDS // 3), minimum=1
)
if FLUX_LEASE_RENEW_SECONDS >= FLUX_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"FLUX_LEASE_RENEW_SECONDS={FLUX_LEASE_RENEW_SECONDS} must be shorter than "
        f"FLUX_LEASE_SECONDS={FLUX_LEASE_SECONDS}."
    )
# A demo without a cluster (gitops/simulated.py): `manage.py serve` runs the Kubernetes API
# emulator with a simulated Flux that follows the portal's commits, one step every
# SIMULATED_CLUSTER_STEP_SECONDS, and watches it; every page says so.
SIMULATED_CLUSTER = env_bool("SIMULATED_CLUSTER", False)
SIMULATED_CLUSTER_STEP_SECONDS = env_int("SIMULATED_CLUSTER_STEP_SECONDS", 2, minimum=0)
if SIMULATED_CLUSTER and (FLUX_IN_CLUSTER or FLUX_CONTEXTS):
    raise ImproperlyConfigured(
        "SIMULATED_CLUSTER=true is a demo without a cluster: unset FLUX_IN_CLUSTER and "
        "FLUX_CONTEXTS, or leave SIMULATED_CLUSTER off to watch a real one."
    )
EVENTS_STREAM_KEY = env_str("EVENTS_STREAM_KEY", "portal:events")
EVENTS_REPLAY_SIZE = env_int("EVENTS_REPLAY_SIZE", 1000, minimum=1)
SSE_KEEPALIVE_SECONDS = env_int("SSE_KEEPALIVE_SECONDS", 15, minimum=1)
SSE_MAX_SECONDS = env_int("SSE_MAX_SECONDS", 600, minimum=1)

# --- Identity (accounts app; README "Signing in") -------------------------------------------
AUTHENTICATION_BACKENDS = ["accounts.backends.PasswordBackend"]
OIDC_ISSUER = env_url("OIDC_ISSUER", schemes=("http", "https"))
OIDC_RP_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_SCOPES", "openid email profile")
OIDC_VERIFY_KID = env_bool("OIDC_VERIFY_KID", True)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_DISCOVERY_TIMEOUT_SECONDS = env_int("OIDC_DISCOVERY_TIMEOUT_SECONDS", 5, minimum=1)
# An SSO session is re-validated at the provider this often (refresh token, groups re-read); a
# subject the provider no longer knows, or a refused refresh, ends the session.
OIDC_REVALIDATE_MINUTES = env_int("OIDC_REVALIDATE_MINUTES", 15, minimum=1)
# The OP endpoints (OIDC_OP_AUTHORIZATION/TOKEN/USER/JWKS_ENDPOINT) are not settings here:
# accounts.oidc reads them from <OIDC_ISSUER>/.well-known/openid-configuration (cached; fetched
# afresh when a sign-in starts, so a dead provider shows the portal's own page).
OIDC_AUTHENTICATE_CLASS = "accounts.oidc.PortalAuthenticationRequestView"
OIDC_CALLBACK_CLASS = "accounts.oidc.PortalAuthenticationCallbackView"
OIDC_TIMEOUT = OIDC_DISCOVERY_TIMEOUT_SECONDS
OIDC_STORE_ID_TOKEN = True
_OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512")
if OIDC_RP_SIGN_ALGO not in _OIDC_ALGORITHMS:
    raise ImproperlyConfigured(
        f"OIDC_SIGN_ALGO={OIDC_RP_SIGN_ALGO!r} is not one of {', '.join(_OIDC_ALGORITHMS)}."
    )
if not {"openid", "email"} <= set(OIDC_RP_SCOPES.split()):
    raise ImproperlyConfigured(
        f"OIDC_SCOPES={OIDC_RP_SCOPES!r} must include openid and email (users are matched by e-mail)."
    )
if OIDC_ISSUER:
    if not OIDC_RP_CLIENT_ID:
        raise ImproperlyConfigured("OIDC_ISSUER is set but OIDC_CLIENT_ID is empty.")
    AUTHENTICATION_BACKENDS.insert(0, "accounts.oidc.PortalOIDCBackend")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Local accounts. LOCAL_SIGNUP_ENABLED=false when single sign-on is the Sovereign's only door for
# customers (operators made with createoperator still sign in with a password).
LOCAL_SIGNUP_ENABLED = env_bool("LOCAL_SIGNUP_ENABLED", True)
PIN_SIGNIN_ENABLED = env_bool("PIN_SIGNIN_ENABLED", True)
PIN_TTL_MINUTES = env_int("PIN_TTL_MINUTES", 15, minimum=1)
PIN_MAX_ATTEMPTS = env_int("PIN_MAX_ATTEMPTS", 5, minimum=1)
PIN_SEND_LIMIT_PER_EMAIL = env_int("PIN_SEND_LIMIT_PER_EMAIL", 5, minimum=0)  # per hour
# Password sign-in (and PIN) failures per window, per account and per client IP (shared cache).
LOGIN_LIMIT_PER_ACCOUNT = env_int("LOGIN_LIMIT_PER_ACCOUNT", 5, minimum=0)
LOGIN_LIMIT_PER_IP = env_int("LOGIN_LIMIT_PER_IP", 30, minimum=0)
LOGIN_LIMIT_WINDOW_SECONDS = env_int("LOGIN_LIMIT_WINDOW_SECONDS", 900, minimum=1)
# Password reset by e-mail: the link's lifetime, and requests per address / per IP per hour.
PASSWORD_RESET_TIMEOUT = 3600 * env_int("PASSWORD_RESET_HOURS", 1, minimum=1)
PASSWORD_RESET_LIMIT_PER_EMAIL = env_int("PASSWORD_RESET_LIMIT_PER_EMAIL", 3, minimum=0)
PASSWORD_RESET_LIMIT_PER_IP = env_int("PASSWORD_RESET_LIMIT_PER_IP", 10, minimum=0)

# Session lifetime: ended this long after sign-in whatever happens (absolute), or after this long
# without a request (idle). The cookie expires with the absolute lifetime.
SESSION_ABSOLUTE_HOURS = env_int("SESSION_ABSOLUTE_HOURS", 12, minimum=1)
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 120, minimum=1)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_HOURS * 3600

API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90, minimum=1)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 366, minimum=1)
if API_TOKEN_DEFAULT_DAYS > API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured(
        f"API_TOKEN_DEFAULT_DAYS={API_TOKEN_DEFAULT_DAYS} exceeds API_TOKEN_MAX_DAYS={API_TOKEN_MAX_DAYS}."
    )

# --- Web security ----------------------------------------------------------------------------
HTTPS = env_bool("PORTAL_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("PORTAL_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("PORTAL_BEHIND_PROXY", False) else None
)
# How many proxies in front of the portal append to X-Forwarded-For (the ingress: 1; a CDN in front
# of it: 2). The client's address is the entry that many places from the right.
PORTAL_TRUSTED_PROXY_HOPS = env_int("PORTAL_TRUSTED_PROXY_HOPS", 1, minimum=1)
SECURE_HSTS_SECONDS = env_int("PORTAL_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# The middleware adds the origin of OIDC_ISSUER to form-action: the sign-out form's redirect to
# the provider's end-session endpoint is a form submission's target too.
CONTENT_SECURITY_POLICY = env_str(
    "PORTAL_CSP",
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
)

# --- Static files (front-end packages come from npm into node_modules/) ----------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
_NODE = BASE_DIR / "node_modules"
STATICFILES_DIRS: list[tuple[str, Path] | Path] = [BASE_DIR / "static"]
if (BASE_DIR / "build" / "static").is_dir():  # bundles made by `make assets` (the IaC editor)
    STATICFILES_DIRS.append(BASE_DIR / "build" / "static")
for _prefix, _dir in (
    ("vendor/htmx", _NODE / "htmx.org" / "dist"),
    ("vendor/htmx-ext-sse", _NODE / "htmx-ext-sse" / "dist"),
    ("vendor/pico", _NODE / "@picocss" / "pico" / "css"),
):
    if _dir.is_dir():
        STATICFILES_DIRS.append((_prefix, _dir))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- E-mail ----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Catalyst Portal <noreply@catalyst.local>")

# --- Public addresses of links the portal sends (e-mails, payment returns) --------------------
# Unset: invitation links use the request's host, voucher links https://marketplace.<fqdn>/.
PORTAL_PUBLIC_URL = env_url("PORTAL_PUBLIC_URL", schemes=("https", "http"))
MARKETPLACE_URL = env_url("MARKETPLACE_URL", schemes=("https", "http"))

# --- RBAC: members and invitations (issue 3) --------------------------------------------------
# How long an invitation link works; the management Organization whose owners may give members of
# internal Organizations access to customer Organizations ("" = the oldest internal Organization).
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72, minimum=1)
MANAGEMENT_ORG = env_str("MANAGEMENT_ORG")
# Expired grants stop working at once; this sweep removes them so Git drops their UserAccess CRs.
GRANT_EXPIRY_SWEEP_SECONDS = env_int("GRANT_EXPIRY_SWEEP_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE["expire-grants"] = {
    "task": "rbac.tasks.expire_grants_task",
    "schedule": GRANT_EXPIRY_SWEEP_SECONDS,
}

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Catalyst Portal API",
    "DESCRIPTION": "Organizations, Environments, marketplace and BSS of an OpenOva Catalyst Sovereign.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_schema.document_errors",
        "orgs.api_schema.environment_choices",
        "billing.api_schema.quote_choices",
        "rbac.api_schema.assign_input",
    ],
    "ENUM_NAME_OVERRIDES": {
        "EnvTypeEnum": "orgs.naming.ENV_TYPES",
        "ApplicationPlacementEnum": "marketplace.models.Placement",
        "ApplicationSizeEnum": "marketplace.models.SIZES",
    },
}

# --- Locale ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={LOG_LEVEL!r} is not a log level (DEBUG, INFO, WARNING, ERROR)."
    )
# plain: one human-readable line; json: one JSON object a line (core/logformat.py).
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.middleware.RequestIdLogFilter"},
        "redact_secrets": {"()": "core.middleware.RedactSecretsLogFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Marketplace (issue 4) -------------------------------------------------------------------
# The public catalog: a directory of Blueprint YAML files (the starter catalog ships in the repo).
CATALOG_DIR = Path(env_str("CATALOG_DIR", str(BASE_DIR / "marketplace" / "catalog")))
# The Sovereign's own catalog repo (owner/repo@branch); empty to skip it.
CATALOG_SOVEREIGN_REPO = env_str("CATALOG_SOVEREIGN_REPO", "system/catalog-sovereign@main")
CATALOG_SYNC_INTERVAL_SECONDS = env_int("CATALOG_SYNC_INTERVAL_SECONDS", 900, minimum=10)
CELERY_BEAT_SCHEDULE["sync-catalog"] = {
    "task": "marketplace.tasks.sync_catalog_task",
    "schedule": CATALOG_SYNC_INTERVAL_SECONDS,
}
# Whether a Flux watcher reports cluster status; without one an uninstalled Application's row is
# removed as soon as its files are gone (nothing can report "drained").
FLUX_CLUSTER_CONNECTED = env_bool("FLUX_CLUSTER_CONNECTED", SIMULATED_CLUSTER)
# Reference values of the charts Blueprints install (<chart>/<version>/values.yaml[, .schema.json]):
# Blueprint values are checked against them where the chart version is known (curation review, tests).
CHART_SPECS_DIR = Path(
    env_str("CHART_SPECS_DIR", str(BASE_DIR.parent / "shared" / "specs" / "charts"))
)
DEMO_LOADERS = ["sync_catalog"]
# The Sovereign's allow-list of chart repositories (issue 10): every Blueprint of every catalog
# source must take its chart from one of these (an entry matches itself and what lies below it:
# `https://charts.example` allows `https://charts.example/stable`, not `https://charts.example.evil`);
# `*` allows any. The default is the starter catalog's repositories.
CHART_REPOSITORIES = env_list(
    "CHART_REPOSITORIES",
    [
        "oci://registry-1.docker.io/bitnamicharts",
        "https://cloudnative-pg.github.io/charts",
        "https://codecentric.github.io/helm-charts",
        "https://dl.gitea.com/charts",
        "https://grafana.github.io/helm-charts",
        "https://ananace.gitlab.io/charts",
        "https://charts.blue-atlas.de",
        "https://guerzon.github.io/vaultwarden",
        "https://helm.mattermost.com",
        "https://nextcloud.github.io/helm",
    ],
)
for _repo in CHART_REPOSITORIES:
    if _repo != "*" and not _repo.startswith(("https://", "oci://")):
        raise ImproperlyConfigured(
            f"CHART_REPOSITORIES: {_repo!r} is not an https:// or oci:// URL (or *)"
        )

# --- BSS: vouchers, sign-up (billing app) ----------------------------------------------------
# Attempts per window (seconds) on the shared cache; 0 turns a limit off.
BILLING_RATE_WINDOW_SECONDS = env_int("BILLING_RATE_WINDOW_SECONDS", 60, minimum=1)
VOUCHER_PREVIEW_LIMIT_PER_IP = env_int("VOUCHER_PREVIEW_LIMIT_PER_IP", 30, minimum=0)
VOUCHER_PREVIEW_LIMIT_PER_USER = env_int("VOUCHER_PREVIEW_LIMIT_PER_USER", 20, minimum=0)
VOUCHER_REDEEM_LIMIT_PER_USER = env_int("VOUCHER_REDEEM_LIMIT_PER_USER", 10, minimum=0)
SIGNUP_LIMIT_PER_IP = env_int("SIGNUP_LIMIT_PER_IP", 10, minimum=0)
VOUCHER_BATCH_MAX = env_int("VOUCHER_BATCH_MAX", 10000, minimum=1)

# --- BSS: quotes, subscriptions, payments, dunning (issue 11) --------------------------------
# How long a quote can be confirmed; a confirmation after that shows a fresh quote instead.
QUOTE_TTL_SECONDS = env_int("QUOTE_TTL_SECONDS", 1800, minimum=60)
# The card payment provider: "" (none: checkout offers invoice payment only) or "stripe".
PAYMENT_PROVIDER = env_str("PAYMENT_PROVIDER", "").lower()
if PAYMENT_PROVIDER not in ("", "stripe"):
    raise ImproperlyConfigured(f"PAYMENT_PROVIDER={PAYMENT_PROVIDER!r}: use stripe or leave empty.")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_url("STRIPE_API_BASE", schemes=("http", "https")) or "https://api.stripe.com"
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 10, minimum=1)
# Where Stripe's hosted checkout lives: pages that send the browser there allow it in the CSP's
# form-action (a form's redirect to another origin is refused otherwise).
STRIPE_CHECKOUT_ORIGIN = env_url(
    "STRIPE_CHECKOUT_ORIGIN", schemes=("http", "https"), default="https://checkout.stripe.com"
)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
if PAYMENT_PROVIDER == "stripe" and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET."
    )
# Dunning: days after an invoice is issued when a reminder is e-mailed, and when the
# Organization is suspended (through Git) if it is still unpaid.
BILLING_REMINDER_DAYS = env_int_list("BILLING_REMINDER_DAYS", [3, 7], minimum=1)
BILLING_GRACE_DAYS = env_int("BILLING_GRACE_DAYS", 14, minimum=1)
DUNNING_SWEEP_SECONDS = env_int("DUNNING_SWEEP_SECONDS", 3600, minimum=10)
CELERY_BEAT_SCHEDULE["billing-dunning"] = {
    "task": "billing.tasks.dunning_task",
    "schedule": DUNNING_SWEEP_SECONDS,
}
# --- BSS II: usage, the monthly billing run, invoices (issue 14) --------------------------------
# Records per usage batch (POST /api/v1/usage, and per JetStream message).
USAGE_BATCH_MAX = min(env_int("USAGE_BATCH_MAX", 1000, minimum=1), 1000)
# The durable JetStream consumer `manage.py consume_usage` reads catalyst.usage.recorded with.
USAGE_CONSUMER_NAME = env_str("USAGE_CONSUMER_NAME", "portal-usage")
# The monthly run (Celery beat, the previous month): its day and hour, and whether its drafts are
# issued at once (false: operators review and issue them in Console → BSS → Invoices).
BILLING_RUN_DAY = env_int("BILLING_RUN_DAY", 1, minimum=1)
BILLING_RUN_HOUR = env_int("BILLING_RUN_HOUR", 2, minimum=0)
if BILLING_RUN_DAY > 28 or BILLING_RUN_HOUR > 23:
    raise ImproperlyConfigured("BILLING_RUN_DAY is 1 to 28 and BILLING_RUN_HOUR 0 to 23.")
BILLING_RUN_ISSUE = env_bool("BILLING_RUN_ISSUE", True)
CELERY_BEAT_SCHEDULE["billing-monthly-run"] = {
    "task": "billing.tasks.billing_run_task",
    "schedule": crontab(minute=0, hour=BILLING_RUN_HOUR, day_of_month=BILLING_RUN_DAY),
}
# How long an archived Organization can be restored.
ORG_RESTORE_DAYS = env_int("ORG_RESTORE_DAYS", 30, minimum=0)
# Argon2id at OWASP's recommended cost (accounts/hashers.py); PBKDF2 hashes of older versions
# are still accepted and re-hashed with Argon2id at the next sign-in.
PASSWORD_ARGON2_MEMORY_KIB = env_int("PASSWORD_ARGON2_MEMORY_KIB", 19456, minimum=8192)
PASSWORD_ARGON2_TIME_COST = env_int("PASSWORD_ARGON2_TIME_COST", 2, minimum=1)
PASSWORD_HASHERS = [
    "accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
# Password hashes computed at once per process (sign-in bursts queue; accounts/backends.py).
PASSWORD_HASH_CONCURRENCY = env_int(
    "PASSWORD_HASH_CONCURRENCY", max(1, os.cpu_count() or 1), minimum=1
)
# Local sign-up (accounts/views.py) checks new passwords with Django's validators.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
