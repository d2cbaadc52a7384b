"""Load Blueprint YAML files from a catalog source into the database.

A source is a directory (the public catalog shipped in `marketplace/catalog/`) or a Git repo read
through `gitops` (`catalog-sovereign`, each Org's `shared-blueprints`). Every file is checked on its
own: a broken file is recorded as a CatalogSyncError (path + error) and skipped; the rest syncs.
Writes are bulk, so 500 files sync in a few queries.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import SchemaError

from orgs.models import Organization

from . import catalog_cache, schema_form, versions, when, wiring
from .models import Blueprint, BlueprintVersion, CatalogSource, CatalogSyncError

log = logging.getLogger(__name__)
PUBLIC_SOURCE = "public"
NOT_INHERITED = ("upgrades", "version", "changelog")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: same safety


@cache
def _document_validator() -> Draft7Validator:
    schema = yaml.safe_load((Path(__file__).with_name("blueprint_schema.yaml")).read_text())
    return Draft7Validator(schema)


def _path_of(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<root>"


def check_document(doc: Any) -> list[str]:
    """Problems with one Blueprint document ([] when it may be loaded)."""
    if not isinstance(doc, dict):
        return ["<root>: a Blueprint document must be a mapping"]
    errors = sorted(_document_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        return [f"{_path_of(e)}: {e.message}" for e in errors[:10]]
    spec = doc["spec"]
    problems = []
    if not versions.is_version(spec["version"]):
        problems.append(f"spec.version: “{spec['version']}” is not a semantic version")
    try:
        Draft202012Validator.check_schema(spec.get("configSchema") or {})
    except SchemaError as exc:
        problems.append(f"spec.configSchema: not a valid JSON Schema: {exc.message}")
    for i, dep in enumerate(spec.get("depends") or []):
        try:
            versions.parse_range(dep["range"])
        except versions.RangeError as exc:
            problems.append(f"spec.depends[{i}].range: {exc}")
        if dep.get("when") and (problem := when.check(dep["when"])):
            problems.append(f"spec.depends[{i}].when: {problem}")
    problems += wiring.check_spec(spec)
    for i, example in enumerate([] if problems else spec.get("examples") or []):
        try:
            schema_form.validate(spec.get("configSchema") or {}, example["values"])
        except ValidationError as exc:
            wrong = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            problems.append(f"spec.examples[{i}] ({example['name']}): {wrong}")
    for key in ("from", "blocks", "downgradeTo"):
        for i, text in enumerate((spec.get("upgrades") or {}).get(key) or []):
            try:
                versions.parse_range(text)
            except versions.RangeError as exc:
                problems.append(f"spec.upgrades.{key}[{i}]: {exc}")
    placement = spec.get("placementSchema") or {}
    if placement.get("minRegions", 1) > placement.get("maxRegions", 5):
        problems.append("spec.placementSchema: minRegions is greater than maxRegions")
    return problems


@dataclass
class Loaded:
    """What a source holds: documents by (name, version), and the files that failed."""

    docs: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _inherit(docs: list[Any]) -> list[Any]:
    """Later versions in one file repeat only what changed: missing top-level spec keys (card,
    configSchema, manifests, ...) are taken from the document before (`upgrades` and `changelog`
    belong to one version and are never inherited)."""
    out: list[Any] = []
    for doc in docs:
        if out and isinstance(doc, dict) and isinstance(out[-1], dict):
            prev = out[-1].get("spec")
            prev_spec: dict[str, Any] = prev if isinstance(prev, dict) else {}
            spec = doc.get("spec")
            if isinstance(spec, dict):
                inherited = {k: v for k, v in prev_spec.items() if k not in NOT_INHERITED}
                doc = {**doc, "spec": {**inherited, **spec}}
        out.append(doc)
    return out


def parse_files(files: Iterable[tuple[str, str]]) -> Loaded:
    loaded = Loaded()
    for path, text in files:
        try:
            docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
        except yaml.YAMLError as exc:
            loaded.errors[path] = f"not valid YAML: {exc}".replace("\n", " ")
            continue
        if not docs:
            loaded.errors[path] = "the file holds no Blueprint document"
            continue
        problems: list[str] = []
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for index, doc in enumerate(_inherit(docs)):
            prefix = f"document {index + 1}: " if len(docs) > 1 else ""
            problems += [prefix + p for p in check_document(doc)]
            if not problems:
                key = (doc["metadata"]["name"], doc["spec"]["version"])
                if key in found or key in loaded.docs:
                    problems.append(f"{prefix}{key[0]} {key[1]} is defined twice")
                found[key] = doc
        if problems:
            loaded.errors[path] = "; ".join(problems)
            continue
        loaded.docs.update({key: (path, doc) for key, doc in found.items()})
    return loaded


def directory_files(directory: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml"))
    return [(str(p.relative_to(directory)), p.read_text(encoding="utf-8")) for p in files]


def _git_location(location: str) -> tuple[str, str, str]:
    owner_repo, _, branch = location.partition("@")
    owner, _, repo = owner_repo.partition("/")
    return owner, repo, branch or "main"


def git_files(location: str) -> list[tuple[str, str]]:
    from gitops.sync import backend

    owner, repo, branch = _git_location(location)
    git = backend()
    try:
        tree = git.read_tree(owner, repo, branch, "")
    except Exception:  # the repo does not exist yet: an empty source
        return []
    out = []
    for path in sorted(tree.blobs):
        if path.endswith((".yaml", ".yml")):
            raw = git.read_file(owner, repo, branch, path)
            out.append((path, (raw or b"").decode("utf-8", "replace")))
    return out


def _digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _card_fields(
    doc: dict[str, Any], owners: dict[str, Organization], source: CatalogSource
) -> dict[str, Any]:
    spec, card = doc["spec"], doc["spec"]["card"]
    tags = sorted(set(card.get("tags") or []))
    name = doc["metadata"]["name"]
    owner = source.organization or owners.get(spec.get("owner", ""))
    visibility = spec.get("visibility", "listed")
    return {
        "source": source,
        "owner": owner,
        "visibility": visibility,
        "title": card["title"],
        "summary": card["summary"],
        "icon": card.get("icon", ""),
        "category": card["category"],
        "tags": tags,
        "license": card.get("license", ""),
        "docs": card.get("docs", ""),
        "latest_version": spec["version"],
        "search_text": " ".join([name, card["title"], card["summary"], *tags]).lower(),
        "tags_text": "|" + "|".join(tags) + "|",
    }


def _current(bp: Blueprint, attr: str) -> Any:
    if attr in ("source", "owner"):  # compare ids: no query per row
        return getattr(bp, f"{attr}_id")
    return getattr(bp, attr)


def _rank(source: CatalogSource) -> int:
    """Precedence of a source for a Blueprint name: the Sovereign's catalogs (0) before an
    Organization's shared Blueprints (1)."""
    return 1 if source.organization_id else 0


def _outranked(name: str, sovereign_source: CatalogSource) -> str:
    return (
        f"{name} is published by the Sovereign's catalog ({sovereign_source.name}), which takes "
        "precedence: this Blueprint is not published; rename it"
    )


def _comparable(value: Any) -> Any:
    return value.pk if isinstance(value, (CatalogSource, Organization)) else value


@transaction.atomic
def store(source: CatalogSource, loaded: Loaded) -> dict[str, int]:
    """Make the source's Blueprints in the database equal to `loaded`."""
    CatalogSource.objects.select_for_update().filter(pk=source.pk).first()  # one sync per source
    latest: dict[str, dict[str, Any]] = {}
    for (name, version), (_path, doc) in loaded.docs.items():
        current = latest.get(name)
        if current is None or versions.SortKey(version) > versions.SortKey(
            current["spec"]["version"]
        ):
            latest[name] = doc
    owner_slugs = {d["spec"].get("owner") for d in latest.values() if d["spec"].get("owner")}
    owners = {o.slug: o for o in Organization.objects.filter(slug__in=owner_slugs)}
    existing = {
        b.name: b for b in Blueprint.objects.filter(name__in=list(latest)).select_related("source")
    }
    foreign = [n for n, b in existing.items() if b.source_id != source.pk]
    replaced: list[CatalogSyncError] = []
    for name in foreign:
        holder = existing[name].source
        if _rank(source) < _rank(holder):
            # the Sovereign's catalog takes a name an Organization published first: the
            # Organization's Blueprint is replaced (versions in use stay, not deployable) and
            # the replacement is reported on the Organization's source
            replaced.append(
                CatalogSyncError(source=holder, path=name, error=_outranked(name, source))
            )
            continue
        # otherwise a name belongs to the first source that published it
        problem = (
            _outranked(name, holder)
            if _rank(holder) < _rank(source)
            else f"{name} is already published by another source"
        )
        for key in [k for k in loaded.docs if k[0] == name]:
            loaded.errors[loaded.docs.pop(key)[0]] = problem
        latest.pop(name)
    CatalogSyncError.objects.bulk_create(replaced)
    to_create, to_update = [], []
    for name, doc in latest.items():
        values = _card_fields(doc, owners, source)
        if name in existing:
            bp = existing[name]
            changed_fields = [a for a, v in values.items() if _current(bp, a) != _comparable(v)]
            for attr in changed_fields:
                setattr(bp, attr, values[attr])
            if changed_fields:
                to_update.append(bp)
        else:
            to_create.append(Blueprint(name=name, **values))
    Blueprint.objects.bulk_create(to_create)
    if to_update:
        Blueprint.objects.bulk_update(
            to_update, [f for f in _card_fields(next(iter(latest.values())), owners, source)]
        )
    by_name = {b.name: b for b in Blueprint.objects.filter(source=source)}
    have = {
        (v.blueprint.name, v.version): v
        for v in BlueprintVersion.objects.filter(blueprint__source=source).select_related(
            "blueprint"
        )
    }
    new_versions, changed = [], []
    for (name, version), (path, doc) in loaded.docs.items():
        digest = _digest(doc)
        row = have.get((name, version))
        deployable = bool(doc["spec"].get("deployable", True))
        if row is None:
            new_versions.append(
                BlueprintVersion(
                    blueprint=by_name[name],
                    version=version,
                    spec=doc["spec"],
                    deployable=deployable,
                    path=path,
                    digest=digest,
                )
            )
        elif row.digest != digest or row.path != path:
            row.spec, row.deployable, row.path, row.digest = doc["spec"], deployable, path, digest
            changed.append(row)
    BlueprintVersion.objects.bulk_create(new_versions)
    BlueprintVersion.objects.bulk_update(changed, ["spec", "deployable", "path", "digest"])
    gone = [v.pk for key, v in have.items() if key not in loaded.docs]
    in_use = set(
        BlueprintVersion.objects.filter(pk__in=gone, applications__isnull=False).values_list(
            "pk", flat=True
        )
    )
    BlueprintVersion.objects.filter(pk__in=in_use).update(deployable=False)
    BlueprintVersion.objects.filter(pk__in=set(gone) - in_use).delete()
    removed = (
        Blueprint.objects.filter(source=source, versions__isnull=True)
        .delete()[1]
        .get("marketplace.Blueprint", 0)
    )
    if to_create or to_update or removed:  # bulk writes send no signal: renew cached cards
        catalog_cache.CATALOG.bump()
    CatalogSyncError.objects.filter(source=source).delete()
    CatalogSyncError.objects.bulk_create(
        [CatalogSyncError(source=source, path=p, error=e) for p, e in sorted(loaded.errors.items())]
    )
    result = {
        "blueprints": len(latest),
        "versions": len(loaded.docs),
        "created": len(new_versions),
        "updated": len(changed),
        "removed": len(gone) - len(in_use) + removed,
        "errors": len(loaded.errors),
    }
    source.last_synced_at = timezone.now()
    source.last_result = result
    source.save(update_fields=["last_synced_at", "last_result"])
    return result


def ensure_sources() -> list[CatalogSource]:
    """The public directory, `catalog-sovereign`, and one source per Org's shared-blueprints.

    A few queries whatever the number of Organizations (sources of new Orgs are made in bulk)."""
    sources = [
        CatalogSource.objects.update_or_create(
            name=PUBLIC_SOURCE,
            defaults={"kind": "directory", "location": str(settings.CATALOG_DIR)},
        )[0]
    ]
    if settings.CATALOG_SOVEREIGN_REPO:
        sources.append(
            CatalogSource.objects.update_or_create(
                name="catalog-sovereign",
                defaults={"kind": "git", "location": settings.CATALOG_SOVEREIGN_REPO},
            )[0]
        )
    orgs = dict(Organization.objects.active().values_list("slug", "pk"))

    def wanted(slug: str) -> CatalogSource:
        return CatalogSource(
            name=f"org:{slug}",
            kind="git",
            location=f"{slug}/shared-blueprints@main",
            organization_id=orgs[slug],
        )

    existing = {
        s.name: s
        for s in CatalogSource.objects.filter(organization__isnull=False).select_related(
            "organization"
        )
    }
    missing = [wanted(slug) for slug in orgs if f"org:{slug}" not in existing]
    if missing:
        CatalogSource.objects.bulk_create(missing, ignore_conflicts=True)
        existing.update(
            (s.name, s)
            for s in CatalogSource.objects.filter(
                name__in=[m.name for m in missing]
            ).select_related("organization")
        )
    stale = []
    for slug in orgs:
        source, want = existing[f"org:{slug}"], wanted(slug)
        if (source.kind, source.location, source.organization_id) != (
            want.kind,
            want.location,
            want.organization_id,
        ):
            source.kind, source.location = want.kind, want.location
            source.organization_id = want.organization_id
            stale.append(source)
    if stale:
        CatalogSource.objects.bulk_update(stale, ["kind", "location", "organization"])
    return sources + [existing[f"org:{slug}"] for slug in sorted(orgs)]


UNCHANGED = {"unchanged": 1}


def _files_revision(files: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for path, text in files:
        digest.update(path.encode() + b"\0" + text.encode() + b"\0")
    return "files:" + digest.hexdigest()


def _sources_with_errors() -> set[int]:
    """Sources some error is recorded against (one query; few sources ever have one)."""
    return set(CatalogSyncError.objects.values_list("source_id", flat=True).distinct())


def _unchanged(source: CatalogSource, revision: str, erring: set[int] | None) -> bool:
    """Read at this revision already, and cleanly: a source that had errors, its own or recorded
    against it by another source (a Blueprint name the Sovereign's catalog took), is read again."""
    return (
        source.last_synced_at is not None
        and source.revision == revision
        and not (source.last_result or {}).get("errors")
        and source.pk not in (_sources_with_errors() if erring is None else erring)
    )


def repository_allowed(repository: str) -> bool:
    """Whether the Sovereign's allow-list (`CHART_REPOSITORIES`) admits a chart repository URL."""
    url = repository.rstrip("/")
    for entry in settings.CHART_REPOSITORIES:
        allowed = entry.rstrip("/")
        if entry == "*" or url == allowed or url.startswith(allowed + "/"):
            return True
    return False


def repository_problem(name: str, version: str, spec: dict[str, Any]) -> str | None:
    """Why a Blueprint version's chart source is refused, naming the Blueprint (None: allowed)."""
    chart = (spec.get("manifests") or {}).get("chart") or {}
    repository = str(chart.get("repository") or "")
    if repository_allowed(repository):
        return None
    return (
        f"{name} {version}: chart repository {repository} is not on the Sovereign's allow-list "
        f"(CHART_REPOSITORIES: {', '.join(settings.CHART_REPOSITORIES) or 'empty'})"
    )


def _refuse_unlisted_repositories(loaded: Loaded) -> None:
    for key, (path, doc) in list(loaded.docs.items()):
        if problem := repository_problem(key[0], key[1], doc["spec"]):
            del loaded.docs[key]
            loaded.errors[path] = "; ".join(filter(None, [loaded.errors.get(path), problem]))


def sync_source(
    source: CatalogSource, *, force: bool = False, erring: set[int] | None = None
) -> dict[str, int]:
    """Load the source's Blueprints unless it has not changed since its last sync (`force`
    reads it anyway): a directory by the digest of its files, a Git source by its head commit."""
    if source.kind == "directory":
        directory = Path(source.location)
        files = directory_files(directory) if directory.is_dir() else []
        revision = _files_revision(files)
        if not force and _unchanged(source, revision, erring):
            return UNCHANGED
    else:
        from gitops.backend import GitError
        from gitops.sync import backend

        owner, repo, branch = _git_location(source.location)
        try:
            revision = backend().head(owner, repo, branch) or ""
        except GitError as exc:  # keep what was loaded; the next sync tries again
            log.warning("catalog %s: Git unreachable, kept as is: %s", source.name, exc)
            return {"unreachable": 1}
        if not force and _unchanged(source, revision, erring):
            return UNCHANGED
        files = git_files(source.location)
    loaded = parse_files(files)
    _refuse_unlisted_repositories(loaded)
    if source.organization_id is not None:  # an Org publishes only private Blueprints of its own
        for _path, doc in loaded.docs.values():
            doc["spec"]["visibility"] = "private"
            doc["spec"]["owner"] = source.organization.slug  # type: ignore[union-attr]
    result = store(source, loaded)
    source.revision = revision
    source.save(update_fields=["revision"])
    for path, error in loaded.errors.items():
        log.warning("catalog %s: %s skipped: %s", source.name, path, error)
    return result


def sync_all(*, force: bool = False) -> dict[str, dict[str, int]]:
    erring = _sources_with_errors()
    return {
        source.name: sync_source(source, force=force, erring=erring) for source in ensure_sources()
    }
