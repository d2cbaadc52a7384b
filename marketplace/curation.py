"""Catalog curation: an Organization proposes one of its private Blueprints (from its
`shared-blueprints` repo) to the Sovereign catalog; a Sovereign operator reviews it — the
document checks, the chart values against the reference charts where known, and the diff
against what `catalog-sovereign` last published — then publishes it (a commit to
`catalog-sovereign`, after which the Blueprint is listed for every Organization) or rejects it
with a reason. Every step is an audit event; the commit is made by a task from the outbox."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit, outbox
from core.actors import Actor, person
from core.errors import ConflictError
from core.models import OutboxItem
from gitops import delivery
from gitops.sync import Desired, backend, sync
from orgs.models import Organization

from . import catalog_cache, chart_values, loader, manifests, schema_form, versions, wiring
from .models import Blueprint, CatalogProposal, ProposalState

PUBLISH_TASK = "marketplace.tasks.publish_proposal_task"
SOVEREIGN_SOURCE = "catalog-sovereign"


def sovereign_repo() -> tuple[str, str, str] | None:
    """(owner, repo, branch) of CATALOG_SOVEREIGN_REPO, or None when it is not configured."""
    location = settings.CATALOG_SOVEREIGN_REPO
    if not location:
        return None
    owner_repo, _, branch = location.partition("@")
    owner, _, repo = owner_repo.partition("/")
    return owner, repo, branch or "main"


def published_path(name: str) -> str:
    return f"{name}/blueprint.yaml"


def document_from_repo(org: Organization, name: str) -> tuple[str, list[str]]:
    """The Blueprint's documents as the Organization's shared-blueprints repo holds them
    (every version, inherited keys filled in), made catalog documents: listed, no owner."""
    loaded = loader.parse_files(loader.git_files(f"{org.slug}/shared-blueprints@main"))
    found = sorted(
        (doc for (bp, _version), (_path, doc) in loaded.docs.items() if bp == name),
        key=lambda d: versions.SortKey(d["spec"]["version"]),
    )
    if not found:
        raise ValidationError(
            {"blueprint": f"{org.slug}/shared-blueprints holds no valid {name} to propose."}
        )
    docs = []
    for doc in found:
        spec = {k: v for k, v in doc["spec"].items() if k != "owner"}
        spec["visibility"] = "listed"
        docs.append({**doc, "spec": spec})
    return manifests.dump_all(docs), [d["spec"]["version"] for d in found]


def proposers(blueprint: Blueprint) -> list[Organization]:
    """Who may propose (an update of) this Blueprint: the Organization whose private Blueprint
    it is, and those whose proposal of it was published."""
    orgs = {
        p.organization
        for p in CatalogProposal.objects.filter(
            name=blueprint.name, state=ProposalState.PUBLISHED
        ).select_related("organization")
    }
    if blueprint.owner is not None and blueprint.source.organization_id == blueprint.owner_id:
        orgs.add(blueprint.owner)
    return sorted(orgs, key=lambda o: o.slug)


def propose(*, by: Actor, org: Organization, blueprint: Blueprint) -> CatalogProposal:
    """Propose the Blueprint as `org`'s shared-blueprints repo holds it (the caller checked
    `catalog.propose` on `org`)."""
    if org not in proposers(blueprint):
        raise ValidationError({"blueprint": f"{blueprint.name} is not {org.slug}'s to propose."})
    if sovereign_repo() is None:
        raise ValidationError({"blueprint": "This Sovereign has no catalog to propose to."})
    document, proposed = document_from_repo(org, blueprint.name)
    try:
        with transaction.atomic():
            proposal = CatalogProposal.objects.create(
                organization=org,
                name=blueprint.name,
                versions=proposed,
                document=document,
                proposed_by=person(by),
            )
            audit.record(
                "catalog.propose",
                actor=by,
                target=proposal,
                org_slug=org.slug,
                after={"name": blueprint.name, "versions": proposed},
            )
    except IntegrityError:
        raise ConflictError(
            {"blueprint": f"{blueprint.name} is already waiting for review."}
        ) from None
    return proposal


# --- review --------------------------------------------------------------------------------------


@dataclass
class Review:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    previous: str = ""  # the document catalog-sovereign publishes now ("" when new)
    diff: str = ""

    @property
    def is_new(self) -> bool:
        return not self.previous


def _document_problems(proposal: CatalogProposal) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    try:
        docs = [d for d in yaml.safe_load_all(proposal.document) if d is not None]
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"], []
    for index, doc in enumerate(docs):
        where = f"document {index + 1}"
        problems += [f"{where}: {p}" for p in loader.check_document(doc)]
        if not isinstance(doc, dict) or doc.get("metadata", {}).get("name") != proposal.name:
            problems.append(f"{where}: it is not {proposal.name}")
            continue
        spec = doc.get("spec") or {}
        chart = (spec.get("manifests") or {}).get("chart") or {}
        found = chart_values.find_chart(str(chart.get("name")), str(chart.get("version")))
        if found is None or found.version != chart.get("version"):
            warnings.append(
                f"{where}: no reference values for chart {chart.get('name')} {chart.get('version')}; its values were not checked"
            )
            continue
        for label, values in _example_values(spec):
            rendered = _rendered(spec, values)
            problems += [f"{where} ({label}): {p}" for p in chart_values.check(found, rendered)]
    return problems, warnings


def _example_values(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    schema = spec.get("configSchema") or {}
    found = []
    for example in spec.get("examples") or []:
        try:
            found.append((example["name"], schema_form.validate(schema, example["values"])))
        except ValidationError:
            continue  # reported by check_document
    return found


def _rendered(spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Chart values an example renders (without dependencies; Secret paths as strings)."""
    manifests_spec = spec.get("manifests") or {}
    out = manifests.deep_merge(manifests_spec.get("values") or {}, {})
    passwords = schema_form.secret_paths(spec.get("configSchema") or {})
    for prop in schema_form.walk(spec.get("configSchema") or {}):
        target = manifests.chart_path(spec, prop.dotted)
        value = schema_form.get_path(values, prop.path)
        if target is None:
            continue
        if prop.dotted in passwords:
            wiring.set_value(out, target, "from-a-secret")
        elif value is not None:
            wiring.set_value(out, target, value)
    return out


def review(proposal: CatalogProposal) -> Review:
    """Everything an operator decides on: problems (publishing is refused while there are any),
    warnings, and the diff against the document catalog-sovereign publishes now."""
    problems, warnings = _document_problems(proposal)
    owner = Blueprint.objects.filter(name=proposal.name).select_related("source").first()
    if owner is not None and owner.source.name not in (
        SOVEREIGN_SOURCE,
        f"org:{proposal.organization.slug}",
    ):
        problems.append(f"{proposal.name} is published by another source ({owner.source.name}).")
    previous = ""
    where = sovereign_repo()
    if where is not None:
        try:
            raw = backend().read_file(*where, published_path(proposal.name))
        except Exception:  # the catalog repo does not exist yet: everything is new
            raw = None
        previous = (raw or b"").decode()
    diff = "".join(
        difflib.unified_diff(
            previous.splitlines(keepends=True),
            proposal.document.splitlines(keepends=True),
            fromfile=f"a/{published_path(proposal.name)}" if previous else "/dev/null",
            tofile=f"b/{published_path(proposal.name)}",
        )
    )
    return Review(problems, warnings, previous, diff)


def _pending(proposal: CatalogProposal) -> CatalogProposal:
    locked = CatalogProposal.objects.select_for_update().get(pk=proposal.pk)
    if locked.state != ProposalState.PENDING:
        raise ConflictError({"state": f"This proposal is {locked.get_state_display().lower()}."})
    return locked


def publish(*, by: Actor, proposal: CatalogProposal) -> CatalogProposal:
    """Accept a proposal: a task commits it to catalog-sovereign, then the catalog lists it."""
    found = review(proposal)
    if found.problems:
        raise ValidationError({"document": found.problems})
    with transaction.atomic():
        locked = _pending(proposal)
        locked.state = ProposalState.PUBLISHED
        locked.reviewed_by = person(by)
        locked.reviewed_at = timezone.now()
        locked.save(update_fields=["state", "reviewed_by", "reviewed_at"])
        event = audit.record(
            "catalog.publish",
            actor=by,
            target=locked,
            org_slug=locked.organization.slug,
            before={"state": ProposalState.PENDING},
            after={"state": locked.state, "name": locked.name, "versions": locked.versions},
        )
        outbox.enqueue(PUBLISH_TASK, locked.pk, actor=by, audit_event=event)
    return locked


def reject(*, by: Actor, proposal: CatalogProposal, reason: str) -> CatalogProposal:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why, so the Organization can fix it."})
    with transaction.atomic():
        locked = _pending(proposal)
        locked.state = ProposalState.REJECTED
        locked.reason = reason[:2000]
        locked.reviewed_by = person(by)
        locked.reviewed_at = timezone.now()
        locked.save(update_fields=["state", "reason", "reviewed_by", "reviewed_at"])
        audit.record(
            "catalog.reject",
            actor=by,
            target=locked,
            org_slug=locked.organization.slug,
            before={"state": ProposalState.PENDING},
            after={"state": locked.state, "reason": locked.reason},
        )
    return locked


# --- delivery ------------------------------------------------------------------------------------


def deliver_proposal(*, proposal_id: int, item: OutboxItem) -> str | None:
    """Commit a published proposal to catalog-sovereign (level-triggered: the Blueprint's file
    equals the proposal's document), then hand the name to that source and sync it."""
    proposal = CatalogProposal.objects.select_related("organization").filter(pk=proposal_id).first()
    where = sovereign_repo()
    if proposal is None or proposal.state != ProposalState.PUBLISHED or where is None:
        return None
    owner, repo, branch = where
    desired = Desired(
        owner=owner,
        repo=repo,
        branch=branch,
        root=f"{proposal.name}/",
        files={published_path(proposal.name): proposal.document},
    )
    author = delivery.author_for(item.actor)
    message = delivery.commit_message(
        item, f"Blueprint {proposal.name} from {proposal.organization.slug}"
    )
    head = delivery.deliver(proposal, lambda: sync(desired, author=author, message=message).head)
    _hand_over(proposal)
    audit.record(
        "catalog.commit",
        actor=None,
        target=proposal,
        org_slug=proposal.organization.slug,
        after={"commit": head, "task": item.pk, "audit_event": item.audit_event_id},
    )
    return head


def _hand_over(proposal: CatalogProposal) -> None:
    """The name moves from the Organization's source to catalog-sovereign, whose sync then loads
    the published document (Applications keep their BlueprintVersion rows)."""
    source = next((s for s in loader.ensure_sources() if s.name == SOVEREIGN_SOURCE), None)
    if source is None:
        return
    with transaction.atomic():
        Blueprint.objects.filter(
            name=proposal.name, source__organization=proposal.organization
        ).update(source=source, owner=None)
        catalog_cache.CATALOG.bump()  # an update() sends no signal: renew cached cards
    loader.sync_source(source)
