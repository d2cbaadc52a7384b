"""Git → portal: the Gitea push webhook (`POST /hooks/gitea/`) and the hooks the portal creates.

Every repository synced with `Desired(watch=True)` gets one `gitea` webhook (push events, JSON)
pointing at `PORTAL_URL` + `/hooks/gitea/`, signed with `GITEA_WEBHOOK_SECRET`. A delivery is
accepted only with a valid `X-Gitea-Signature` (HMAC-SHA256 of the raw body, hex); it is recorded
as a `GitPush` and handed to the registered push handlers (marketplace reads the change back),
which only enqueue work: the answer is quick, and a lost delivery is caught by the periodic
reconcile of each domain app. `GitPush` rows are kept `GIT_PUSH_RETENTION_DAYS` (`prune_pushes`,
run by that reconcile): long enough to name a pusher and to recognise Gitea's redeliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import GitPush

log = logging.getLogger(__name__)

HOOK_PATH = "/hooks/gitea/"
MAX_BODY = 5 * 1024 * 1024


@dataclass(frozen=True)
class Push:
    owner: str
    repo: str
    branch: str
    before: str
    after: str
    pusher: str


@dataclass(frozen=True)
class PullEvent:
    owner: str
    repo: str
    number: int
    action: str  # opened, synchronized, reopened, closed, …
    head: str
    head_sha: str
    base: str
    url: str
    user: str
    merged: bool


PushHandler = Callable[[Push], None]
PullHandler = Callable[[PullEvent], None]
_handlers: list[PushHandler] = []
_pull_handlers: list[PullHandler] = []
_hooked: set[tuple[str, str, str]] = set()  # (server, owner, repo) confirmed this process


def register_push_handler(handler: PushHandler) -> None:
    if handler not in _handlers:
        _handlers.append(handler)


def register_pull_handler(handler: PullHandler) -> None:
    if handler not in _pull_handlers:
        _pull_handlers.append(handler)


def webhook_secret() -> str:
    """GITEA_WEBHOOK_SECRET, else one derived from SECRET_KEY (stable across restarts)."""
    if settings.GITEA_WEBHOOK_SECRET:
        return str(settings.GITEA_WEBHOOK_SECRET)
    return hmac.new(settings.SECRET_KEY.encode(), b"gitea-webhook", hashlib.sha256).hexdigest()


def hook_url() -> str:
    return settings.PORTAL_URL.rstrip("/") + HOOK_PATH if settings.PORTAL_URL else ""


def ensure_push_hook(git: Any, owner: str, repo: str) -> None:
    """Create the repo's push webhook to the portal (once per process); the local backend has
    none (its repos are read back by the periodic reconcile only)."""
    ensure = getattr(git, "ensure_webhook", None)
    url = hook_url()
    if ensure is None or not url:
        return
    key = (getattr(git, "api", ""), owner, repo)
    if key in _hooked:
        return
    ensure(owner, repo, url=url, secret=webhook_secret(), events=("push", "pull_request"))
    _hooked.add(key)


def forget_hooks() -> None:
    """Tests: another emulator, another set of hooks."""
    _hooked.clear()


def signature_ok(body: bytes, signature: str) -> bool:
    expected = hmac.new(webhook_secret().encode(), body, hashlib.sha256).hexdigest()
    return bool(signature) and hmac.compare_digest(expected, signature.strip().lower())


def _pusher(payload: dict[str, Any]) -> str:
    for key in ("pusher", "sender"):
        user = payload.get(key) or {}
        login = str(user.get("login") or user.get("username") or "")
        full = str(user.get("full_name") or "")
        if login:
            return f"{login} ({full})" if full and full != login else login
    head = payload.get("head_commit") or {}
    author = head.get("author") or {}
    return str(author.get("username") or author.get("name") or "")


def parse_push(payload: Any) -> Push | None:
    if not isinstance(payload, dict):
        return None
    repository = payload.get("repository") or {}
    full = str(repository.get("full_name") or "")
    ref = str(payload.get("ref") or "")
    after = str(payload.get("after") or "")
    if "/" not in full or not ref.startswith("refs/heads/") or not after:
        return None
    owner, repo = full.split("/", 1)
    return Push(
        owner=owner,
        repo=repo,
        branch=ref.removeprefix("refs/heads/"),
        before=str(payload.get("before") or ""),
        after=after,
        pusher=_pusher(payload)[:255],
    )


@csrf_exempt
@require_POST
def gitea_webhook(request: HttpRequest) -> HttpResponse:
    body = request.body
    if len(body) > MAX_BODY:
        return JsonResponse({"detail": "Payload too large."}, status=413)
    if not signature_ok(body, request.headers.get("X-Gitea-Signature", "")):
        log.warning("Gitea webhook with a bad signature from %s", request.META.get("REMOTE_ADDR"))
        return JsonResponse({"detail": "Bad signature."}, status=403)
    event = request.headers.get("X-Gitea-Event", "")
    if event == "pull_request":
        return _pull_request(body)
    if event != "push":
        return JsonResponse({"detail": f"Ignored event {event or '(none)'}."}, status=202)
    try:
        push = parse_push(json.loads(body))
    except ValueError:
        push = None
    if push is None:
        return JsonResponse({"detail": "Not a push payload."}, status=400)
    delivery = request.headers.get("X-Gitea-Delivery", "")[:64]
    try:
        with transaction.atomic():
            GitPush.objects.create(
                delivery=delivery,
                owner=push.owner,
                repo=push.repo,
                branch=push.branch,
                before=push.before[:64],
                after=push.after[:64],
                pusher=push.pusher,
            )
            for handler in list(_handlers):
                handler(push)
    except IntegrityError:
        return JsonResponse({"detail": "Already received."}, status=200)
    return JsonResponse({"detail": "Accepted."}, status=202)


def parse_pull(payload: Any) -> PullEvent | None:
    if not isinstance(payload, dict):
        return None
    pull = payload.get("pull_request") or {}
    full = str((payload.get("repository") or {}).get("full_name") or "")
    if "/" not in full or not pull.get("number"):
        return None
    owner, repo = full.split("/", 1)
    head, base = pull.get("head") or {}, pull.get("base") or {}
    user = pull.get("user") or payload.get("sender") or {}
    return PullEvent(
        owner=owner,
        repo=repo,
        number=int(pull["number"]),
        action=str(payload.get("action") or ""),
        head=str(head.get("ref") or ""),
        head_sha=str(head.get("sha") or ""),
        base=str(base.get("ref") or ""),
        url=str(pull.get("html_url") or ""),
        user=str(user.get("login") or user.get("username") or ""),
        merged=bool(pull.get("merged")),
    )


def _pull_request(body: bytes) -> HttpResponse:
    try:
        event = parse_pull(json.loads(body))
    except (ValueError, TypeError):
        event = None
    if event is None:
        return JsonResponse({"detail": "Not a pull request payload."}, status=400)
    with transaction.atomic():
        for handler in list(_pull_handlers):
            handler(event)
    return JsonResponse({"detail": "Accepted."}, status=202)


def pusher_of(owner: str, repo: str, branch: str, after: str) -> str:
    """Who pushed `after` to the branch, as the webhook said ("" when no hook reported it)."""
    found = (
        GitPush.objects.filter(owner=owner, repo=repo, branch=branch, after=after)
        .order_by("-received_at")
        .values_list("pusher", flat=True)
        .first()
    )
    return found or ""


PRUNE_BATCH = 5000


def prune_pushes() -> int:
    """Delete the pushes received more than GIT_PUSH_RETENTION_DAYS ago (in batches, so one
    run never holds a long lock); returns how many went."""
    cutoff = timezone.now() - timedelta(days=settings.GIT_PUSH_RETENTION_DAYS)
    pruned = 0
    while True:
        batch = list(
            GitPush.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)[
                :PRUNE_BATCH
            ]
        )
        if not batch:
            return pruned
        pruned += GitPush.objects.filter(pk__in=batch).delete()[0]
