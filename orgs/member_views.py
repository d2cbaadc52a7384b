"""Members, invitations and the access matrix of an Organization (thin: rbac → service → page)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import confirm, links
from core.errors import ConflictError
from rbac import access
from rbac.models import UserAccess

from . import members as svc
from .member_forms import InviteForm, TierForm, TransferForm
from .models import Invitation, InvitationState, Organization


def _org(request: HttpRequest, slug: str, action: str) -> Organization:
    """Members, invitations and the matrix are the whole Organization's: a grant scoped below it
    sees the Organization but not these (403)."""
    return access.get_object_for(request.user, Organization, action=action, slug=slug, strict=True)


def _link_base(request: HttpRequest) -> str:
    return links.portal_url("/", fallback=request.build_absolute_uri("/"))


def _page(
    request: HttpRequest,
    org: Organization,
    *,
    form: InviteForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    member_list = svc.members(org)
    invitations = org.invitations.select_related("invited_by").filter(state=InvitationState.PENDING)
    return render(
        request,
        "orgs/members.html",
        {
            "org": org,
            "members": member_list,
            "invitations": invitations,
            "form": form or InviteForm(org=org),
            "tier_form": TierForm(),
            "transfer_form": TransferForm(
                members=[
                    m for m in member_list if m.user is not None and m.user.pk != request.user.pk
                ]
            ),
            "error": error,
        },
        status=status,
    )


def _failed(
    request: HttpRequest, org: Organization, exc: ValidationError, **kw: Any
) -> HttpResponse:
    status = 409 if isinstance(exc, ConflictError) else 400
    return _page(request, org, error=" ".join(exc.messages), status=status, **kw)


@login_required
@require_GET
def member_list(request: HttpRequest, slug: str) -> HttpResponse:
    return _page(request, _org(request, slug, "members.read"))


@login_required
@require_POST
def member_invite(request: HttpRequest, slug: str) -> HttpResponse:
    org = _org(request, slug, "members.invite")
    form = InviteForm(request.POST, org=org)
    if not form.is_valid():
        return _page(request, org, form=form, status=400)
    try:
        invitation = svc.invite(
            by=request.user,
            org=org,
            email=form.cleaned_data["email"],
            tier=form.cleaned_data["tier"],
            scopes=form.scopes(),
            link_base=_link_base(request),
        )
    except ValidationError as exc:
        return _failed(request, org, exc, form=form)
    messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("orgs:members", slug=org.slug)


def _invitation(org: Organization, pk: int) -> Invitation:
    invitation = org.invitations.filter(pk=pk).first()
    if invitation is None:
        raise Http404
    return invitation


def _invitation_action(
    action: str,
    run: Callable[[HttpRequest, Organization, Invitation], Invitation],
    done: str,
    asks: str = "",
) -> Callable[[HttpRequest, str, int], HttpResponse]:
    """A POST on one pending invitation: authorize, run the service, report `done` ({email}).
    With `asks` (what will happen), a GET shows the confirmation page that POSTs."""

    @login_required
    @require_http_methods(["GET", "POST"] if asks else ["POST"])
    def view(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
        org = _org(request, slug, action)
        if request.method == "GET":
            invitation = _invitation(org, pk)
            return confirm.page(
                request,
                title=f"Revoke the invitation for {invitation.email}",
                consequence=asks.format(email=invitation.email),
                button="Revoke invitation",
                cancel_url=reverse("orgs:members", args=[org.slug]),
                crumbs=_member_crumbs(org),
            )
        try:
            invitation = run(request, org, _invitation(org, pk))
        except ValidationError as exc:
            return _failed(request, org, exc)
        messages.success(request, done.format(email=invitation.email))
        return redirect("orgs:members", slug=org.slug)

    return view


invitation_resend = _invitation_action(
    "members.invite",
    lambda request, org, inv: svc.resend_invitation(
        by=request.user, invitation=inv, link_base=_link_base(request)
    ),
    "Invitation sent again to {email}.",
)
invitation_revoke = _invitation_action(
    "members.invite",
    lambda request, org, inv: svc.revoke_invitation(by=request.user, invitation=inv),
    "Invitation for {email} revoked.",
    asks="The link sent to {email} stops working at once. You can invite the address again.",
)
invitation_confirm = _invitation_action(
    "members.update",
    lambda request, org, inv: svc.confirm_invitation(by=request.user, invitation=inv),
    "Invitation for {email} confirmed.",
)


@login_required
@require_POST
def grant_tier(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    org = _org(request, slug, "members.update")
    grant = UserAccess.objects.in_org(org.slug).filter(pk=pk).select_related("user").first()
    if grant is None:
        raise Http404
    form = TierForm(request.POST)
    if not form.is_valid():
        return _page(request, org, error="Choose a tier.", status=400)
    try:
        svc.change_tier(by=request.user, grant=grant, tier=form.cleaned_data["tier"])
    except ValidationError as exc:
        return _failed(request, org, exc)
    messages.success(request, f"{grant.user or grant.group} is now {form.cleaned_data['tier']}.")
    return redirect("orgs:members", slug=org.slug)


def _member_crumbs(org: Organization) -> list[tuple[str, str]]:
    return [
        (org.display_name, reverse("orgs:detail", args=[org.slug])),
        ("Members", reverse("orgs:members", args=[org.slug])),
    ]


@login_required
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    org = _org(request, slug, "members.remove")
    user = svc.find_member_user(org, user_id)
    if user is None:
        raise Http404
    if request.method == "GET":
        name = user.get_username()
        return confirm.page(
            request,
            title=f"Remove {name} from {org.display_name}",
            consequence=f"Every grant {name} holds in {org.slug} is revoked at once and its "
            "UserAccess leaves Git. Their account stays; you can invite them again.",
            button=f"Remove {name}",
            cancel_url=reverse("orgs:members", args=[org.slug]),
            crumbs=_member_crumbs(org),
        )
    try:
        svc.remove_member(by=request.user, org=org, user=user)
    except ValidationError as exc:
        return _failed(request, org, exc)
    messages.success(request, f"{user.get_username()} was removed from {org.slug}.")
    return redirect("orgs:members", slug=org.slug)


@login_required
@require_POST
def ownership_transfer(request: HttpRequest, slug: str) -> HttpResponse:
    org = _org(request, slug, "organization.transfer")
    member_list = svc.members(org)
    form = TransferForm(request.POST, members=[m for m in member_list if m.user is not None])
    if not form.is_valid():
        return _page(request, org, error="Choose the new owner among the members.", status=400)
    to = next(m.user for m in member_list if m.user and m.user.pk == form.cleaned_data["to"])
    try:
        svc.transfer_ownership(by=request.user, org=org, to=to)
    except ValidationError as exc:
        return _failed(request, org, exc)
    messages.success(request, f"{to.get_username()} now owns {org.slug}; you are an admin.")
    return redirect("orgs:members", slug=org.slug)


@login_required
@require_GET
def access_matrix(request: HttpRequest, slug: str) -> HttpResponse:
    org = _org(request, slug, "members.read")
    envs, rows = svc.access_matrix(org)
    return render(request, "orgs/members_matrix.html", {"org": org, "envs": envs, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = svc.invitation_for_token(token)
    if invitation is None:
        return render(
            request,
            "orgs/members_accept.html",
            {"error": "This invitation link is not valid."},
            status=404,
        )
    context: dict[str, Any] = {"invitation": invitation, "org": invitation.organization}
    email = (getattr(request.user, "email", "") or "").strip().lower()
    if invitation.effective_state != InvitationState.PENDING:
        context["error"] = f"This invitation is {invitation.effective_state}; ask for a new one."
        return render(request, "orgs/members_accept.html", context, status=410)
    if email != invitation.email:
        context["error"] = (
            f"This invitation is for {invitation.email}, but you are signed in as "
            f"{email or request.user.get_username()}. Sign in with the invited address."
        )
        return render(request, "orgs/members_accept.html", context, status=403)
    if request.method == "POST":
        try:
            svc.accept_invitation(user=request.user, token=token)
        except ValidationError as exc:
            context["error"] = " ".join(exc.messages)
            return render(request, "orgs/members_accept.html", context, status=409)
        messages.success(request, f"Welcome to {invitation.organization.display_name}.")
        return redirect("orgs:detail", slug=invitation.organization.slug)
    return render(request, "orgs/members_accept.html", context)
