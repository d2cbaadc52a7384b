"""Glue between the outbox and a Git-delivered object: mark it committed or retrying, and say how
far an action's delivery got in its success message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.models import DeliveryState, OutboxItem

from .backend import Author


def author_for(user: Any) -> Author:
    if user is None:
        return Author("Catalyst Portal", "portal@catalyst.local")
    name = user.get_full_name() or user.get_username()
    email = user.email or f"{user.get_username()}@users.noreply.catalyst.local"
    return Author(name, email)


def commit_message(item: OutboxItem, subject: str) -> str:
    event = item.audit_event
    if event is None:
        return f"sync {subject}\n\nRequest-Id: {item.request_id or '-'}\n"
    note = str((event.after or {}).get("message") or "").strip()
    if note:  # the person's own message (the editor's commit-on-save) leads
        first, _, rest = note.partition("\n")
        body = f"{rest.strip()}\n\n" if rest.strip() else ""
        return f"{first.strip()}\n\n{body}{event.action}: {subject}\n{_trailers(item)}"
    return f"{event.action}: {subject}\n\n{_trailers(item)}"


def _trailers(item: OutboxItem) -> str:
    event = item.audit_event
    if event is None:
        return f"Request-Id: {item.request_id or '-'}\n"
    return (
        f"Audit-Event: {event.pk}\nActor: {event.actor_repr}\n"
        f"Request-Id: {event.request_id or '-'}\n"
    )


def group_commit(parts: list[tuple[OutboxItem, str]], noun: str) -> tuple[Author, str]:
    """The author and message of one commit carrying several outbox rows' work (`parts`: each
    row with its subject, e.g. "organization acme"). One row: exactly its own message and actor.
    Several: the subject "sync <n> <noun>", then per row its action and subject and its
    `Audit-Event:`, `Actor:` and `Request-Id:` lines; the author is their actor when all share one,
    else the portal's committer."""
    if len(parts) == 1:
        item, subject = parts[0]
        return author_for(item.actor), commit_message(item, subject)
    blocks = []
    for item, subject in parts:
        event = item.audit_event
        note = str((event.after or {}).get("message") or "").strip() if event else ""
        head = f"{event.action}: {subject}" if event else f"sync {subject}"
        if note:
            head += f" ({note.splitlines()[0].strip()})"
        blocks.append(f"{head}\n{_trailers(item)}")
    actors = {item.actor_id for item, _subject in parts}
    if len(actors) == 1:
        author = author_for(parts[0][0].actor)
    else:
        author = Author(settings.GIT_COMMITTER_NAME, settings.GIT_COMMITTER_EMAIL)
    return author, f"sync {len(parts)} {noun}\n\n" + "\n".join(blocks)


def deliver(
    obj: models.Model,
    run: Callable[[], str | None],
    *,
    along: models.QuerySet[Any] | None = None,
    recorded: Callable[[str | None], None] | None = None,
) -> str | None:
    """Run a delivery; record the commit on `obj`, or the error and "retrying" before re-raising.

    `along`: objects whose files the same commit carries (an Organization's Environments): they
    get the same state and commit id. `recorded(head)`: what else the caller records about the
    delivery, in the same transaction as the commit id (one write to the database, not one per
    fact)."""
    targets = [type(obj)._default_manager.filter(pk=obj.pk)]
    if along is not None:
        targets.append(along)
    try:
        head = run()
    except Exception as exc:
        mark_retrying(*targets, exc=exc)
        raise
    with transaction.atomic():
        mark_delivered(*targets, head=head)
        if recorded is not None:
            recorded(head)
    return head


def mark_retrying(*targets: models.QuerySet[Any], exc: Exception) -> None:
    """The objects of `targets` failed to deliver: "retrying" with the error."""
    for qs in targets:
        qs.update(
            delivery_state=DeliveryState.RETRYING,
            delivery_error=f"{type(exc).__name__}: {exc}"[:2000],
        )


def mark_delivered(*targets: models.QuerySet[Any], head: str | None) -> None:
    """The objects of `targets` are in Git at commit `head`."""
    now = timezone.now()
    for qs in targets:
        qs.update(
            delivery_state=DeliveryState.DELIVERED,
            delivery_error="",
            last_commit_sha=head or "",
            delivered_at=now,
        )


COMMITTING = "committing to Git, then watching Flux."


def progress_note(obj: models.Model, *, before: str, timeline: str) -> SafeString | str:
    """The end of an action's success message: the commit it made, linked to `timeline` (where
    the object's history is shown), when the delivery has run already (in-process tasks, or a
    fast worker); else that it is being committed. `before`: the object's commit before the
    action (a commit that did not change is not this action's)."""
    sha = (
        type(obj)
        ._default_manager.filter(pk=obj.pk)
        .values_list("last_commit_sha", flat=True)
        .first()
        or ""
    )
    if not sha or sha == before:
        return COMMITTING
    return format_html(
        'committed <a href="{}"><code class="sha" title="{}">{}</code></a> — watching Flux.',
        timeline,
        sha,
        sha[:7],
    )
