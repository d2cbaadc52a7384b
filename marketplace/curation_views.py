"""Catalog curation pages: propose (an Organization's admins, on its private Blueprint's page),
and the operators' review queue (validation, diff, publish, reject with a reason)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import pagination
from orgs.models import Organization
from rbac import access

from . import curation
from .models import Blueprint, CatalogProposal, ProposalState
from .views import _blueprint

CURATE = "catalog.curate"


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="The Organization sees this; say what to change.",
    )


@login_required
@require_POST
def propose(request: HttpRequest, name: str) -> HttpResponse:
    bp = _blueprint(request.user, name)
    org = _proposer(request.user, bp, request.POST.get("organization", ""))
    try:
        curation.propose(by=request.user, org=org, blueprint=bp)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{bp.name} was proposed to the Sovereign catalog.")
    return redirect("marketplace:blueprint", name=bp.name)


def _proposer(user: Any, bp: Blueprint, slug: str) -> Organization:
    """The Organization proposing (404 unless it may propose this Blueprint and the user sees
    it, 403 without `catalog.propose` there)."""
    orgs = {o.slug: o for o in curation.proposers(bp)}
    chosen = orgs.get(slug) if slug else (next(iter(orgs.values())) if len(orgs) == 1 else None)
    if chosen is None:
        raise Http404
    return access.get_object_for(
        user, Organization.objects.all(), action="catalog.propose", pk=chosen.pk
    )


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    access.require_global(request.user, CURATE)
    proposals = CatalogProposal.objects.select_related("organization", "proposed_by")
    decided = request.GET.get("state") == "decided"
    page = pagination.paginate_request(
        request,
        proposals.exclude(state=ProposalState.PENDING)
        if decided
        else proposals.filter(state=ProposalState.PENDING),
        # waiting: the oldest first (a queue); decided: the latest first
        order=("-created_at", "-id") if decided else ("created_at", "id"),
    )
    return render(request, "marketplace/curation_queue.html", {"page": page, "decided": decided})


@login_required
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_global(request.user, CURATE)
    proposal = get_object_or_404(
        CatalogProposal.objects.select_related("organization", "proposed_by", "reviewed_by"), pk=pk
    )
    form = RejectForm(request.POST if request.POST.get("action") == "reject" else None)
    error = ""
    if request.method == "POST":
        try:
            if request.POST.get("action") == "publish":
                curation.publish(by=request.user, proposal=proposal)
                messages.success(request, f"{proposal.name} published to the Sovereign catalog.")
                return redirect("marketplace:curation-review", pk=pk)
            if form.is_valid():
                curation.reject(
                    by=request.user, proposal=proposal, reason=form.cleaned_data["reason"]
                )
                messages.success(
                    request, f"{proposal.name} was rejected; {proposal.organization.slug} sees why."
                )
                return redirect("marketplace:curation-review", pk=pk)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    found = curation.review(proposal)
    status = 400 if error or form.errors else 200
    return render(
        request,
        "marketplace/curation_review.html",
        {"proposal": proposal, "review": found, "form": form, "error": error},
        status=status,
    )
