"""The Git side of an Application: what its branch holds when the portal could not take it in
(an invalid push, or a push that conflicts with a portal change), and the two ways out."""

from __future__ import annotations

import difflib
import secrets
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.middleware import set_policy_nonce

from . import changes, gitsync, manifests, schema_form
from .models import GitSyncState
from .views import _app, _done

MAX_EDITOR_BYTES = 256 * 1024


@login_required
@require_http_methods(["GET", "POST"])
def app_git(request: HttpRequest, env: str, app: str) -> HttpResponse:
    application = _app(request, env, app, "applications.read")
    state = gitsync.state_of(application)
    errors: list[str] = []
    if request.method == "POST":
        application = _app(request, env, app, "applications.update")
        choice = request.POST.get("choice")
        before = application.last_commit_sha
        try:
            if choice == "keep-git":
                gitsync.keep_git(by=request.user, app=application)
                done = "Git's version adopted"
            elif choice == "use-portal":
                gitsync.use_portal(by=request.user, app=application)
                done = "the portal's configuration replaces Git's change"
            else:
                raise ValidationError({"choice": "Choose keep-git or use-portal."})
        except ValidationError as exc:
            errors = exc.messages
        else:
            _done(request, application, f"{application.name}: {done}", before=before)
            return redirect("marketplace:app", env=application.environment.name, app=app)
    owner, repo, branch = gitsync.where(application)
    portal_text = manifests.values_text(application)
    diff = ""
    if state.state == GitSyncState.CONFLICT:
        diff = "".join(
            difflib.unified_diff(
                portal_text.splitlines(keepends=True),
                state.git_text.splitlines(keepends=True),
                fromfile="portal/values.yaml",
                tofile=f"git/{state.commit[:10]}/values.yaml",
            )
        )
    return render(
        request,
        "marketplace/app_git.html",
        {
            "app": application,
            "git": state,
            "where": f"{owner}/{repo}@{branch}",
            "portal_text": portal_text,
            "diff": diff,
            "errors": errors,
        },
        status=409 if errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def app_editor(request: HttpRequest, env: str, app: str) -> HttpResponse:
    """values.yaml as code: the third view of the same change as the form (and its Advanced
    section). Saving validates on the server (authoritative) and commits with the message."""
    application = _app(request, env, app, "applications.update")
    committed = gitsync.committed_text(application)
    text = committed
    if request.method == "POST":  # a textarea sends CRLF line ends
        text = request.POST.get("values_yaml", "").replace("\r\n", "\n")
    message = request.POST.get("message", "").strip()
    errors: list[dict[str, Any]] = []
    if request.method == "POST":
        if len(text) > MAX_EDITOR_BYTES:
            errors = [{"path": "values", "message": "values.yaml is too large."}]
        else:
            values, errors = gitsync.check_values(application, text)
        if not errors and values is not None:
            before = application.last_commit_sha
            try:
                changes.update_values(
                    by=request.user,
                    app=application,
                    values=values,
                    message=message or f"Edit values of {application.name} in the editor",
                    text=text,
                )
            except ValidationError as exc:
                errors = gitsync.with_lines(text, gitsync.errors_of(exc))
            else:
                _done(request, application, f"{application.name}: values.yaml saved", before=before)
                return redirect("marketplace:app", env=application.environment.name, app=app)
    schema = schema_form.without_secrets(application.blueprint_version.config_schema)
    nonce = secrets.token_urlsafe(16)  # CodeMirror injects its stylesheet: allowed by nonce only
    response = render(
        request,
        "marketplace/app_editor.html",
        {
            "app": application,
            "schema": schema,
            "committed": committed,
            "text": text,
            "message": message,
            "errors": errors,
            "style_nonce": nonce,
        },
        status=400 if errors else 200,
    )
    set_policy_nonce(response, "style-src", nonce)
    return response
