"""InstallPlan resolution: dependencies (semver ranges, aliases, `when`), reuse or create, placement.

`resolve()` reads only; it returns a JSON-serializable plan (apps to create, deps first; existing
Applications to use; dependencies skipped by `when`) or raises ValidationError with field paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from gitops import naming
from orgs.models import Environment

from . import loader, manifests, schema_form, versions, when, wiring
from .models import SIZES, Application, AppState, Blueprint, BlueprintVersion, Placement

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]\Z")
NEW = "new"


def name_problem(name: str) -> str | None:
    if not NAME_RE.match(name or ""):
        return "Use 3 to 40 lower-case letters, digits and dashes, starting with a letter."
    if naming.reserved_app_name(name):
        return f"“{name}” is reserved by the platform; choose another name."
    return None


def validate_placement(
    *,
    mode: str,
    regions: list[str],
    schema: dict[str, Any],
    env: Environment,
    field_prefix: str = "",
) -> list[str]:
    """The regions, active one first, or ValidationError on `placement` / `regions`."""
    modes = schema.get("modes") or [Placement.SINGLE.value]
    if mode not in Placement.values:
        raise ValidationError(
            {f"{field_prefix}placement": f"Choose one of {', '.join(Placement.values)}."}
        )
    if mode not in modes:
        raise ValidationError(
            {f"{field_prefix}placement": f"This Blueprint allows only {', '.join(modes)}."}
        )
    regions = list(dict.fromkeys(regions or []))
    available = [c.name for c in env.regions.all()]
    if not regions and len(available) >= 1 and mode == Placement.SINGLE:
        regions = available[:1]
    outside = [r for r in regions if r not in available]
    if outside:
        raise ValidationError(
            {
                f"{field_prefix}regions": f"Not a region of {env.name}: {', '.join(outside)} (it has {', '.join(available) or 'none'})."
            }
        )
    low, high = int(schema.get("minRegions", 1)), int(schema.get("maxRegions", 5))
    if mode == Placement.SINGLE:
        low, high = 1, 1
    else:
        low = max(low, 2)
    if not low <= len(regions) <= high:
        wanted = f"exactly {low}" if low == high else f"{low} to {high}"
        raise ValidationError(
            {f"{field_prefix}regions": f"{mode} needs {wanted} regions; {len(regions)} chosen."}
        )
    return regions


def _placement_for_dependency(
    version: BlueprintVersion, mode: str, regions: list[str]
) -> tuple[str, list[str]]:
    schema = version.placement_schema
    modes = schema.get("modes") or [Placement.SINGLE.value]
    if mode in modes and len(regions) <= int(schema.get("maxRegions", 5)):
        return mode, regions
    return Placement.SINGLE.value, regions[:1]


@dataclass
class _State:
    env: Environment
    placement: str
    regions: list[str]
    size: str
    choices: dict[str, str]
    apps: list[dict[str, Any]] = field(default_factory=list)
    uses: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    # names of the Environment's Applications that a new one of this plan could take (all start
    # with the root's name: a dependency is named `<dependant>-<alias>`), read once
    taken: set[str] = field(default_factory=set)
    versions: dict[int, BlueprintVersion] = field(default_factory=dict)


def deployable_versions(blueprint_name: str, org_slug: str) -> list[BlueprintVersion]:
    qs = BlueprintVersion.objects.filter(
        blueprint__name=blueprint_name, deployable=True
    ).select_related("blueprint")
    return [
        v
        for v in qs
        if v.blueprint.visibility != "private"
        or (v.blueprint.owner and v.blueprint.owner.slug == org_slug)
    ]


def candidates(env: Environment, blueprint_name: str, range_text: str) -> list[Application]:
    """Applications in `env` that could serve a dependency on `blueprint_name` within the range."""
    apps = (
        Application.objects.filter(
            environment=env, blueprint_version__blueprint__name=blueprint_name
        )
        .exclude(state=AppState.UNINSTALLING)
        .select_related("blueprint_version")
    )
    return [a for a in apps if versions.satisfies(a.version, range_text)]


def _existing(state: _State, key: str, choice: str, dep: dict[str, Any]) -> Application:
    env_name, _, app_name = choice.rpartition("/")
    if env_name and env_name != state.env.name:
        other = Environment.objects.filter(name=env_name).select_related("organization").first()
        if other is None or other.organization_id != state.env.organization_id:
            raise ValidationError(
                {
                    key: f"“{choice}” belongs to another Organization; only Applications of {state.env.organization.slug} can be used."
                }
            )
        raise ValidationError(
            {key: f"“{choice}” is in {env_name}; a dependency must be in {state.env.name}."}
        )
    app = (
        Application.objects.filter(environment=state.env, name=app_name)
        .select_related("blueprint_version__blueprint")
        .first()
    )
    if app is None:
        raise ValidationError({key: f"There is no Application “{app_name}” in {state.env.name}."})
    if app.blueprint.name != dep["blueprint"]:
        raise ValidationError(
            {key: f"“{app_name}” is {app.blueprint.name}, not {dep['blueprint']}."}
        )
    if not versions.satisfies(app.version, dep["range"]):
        raise ValidationError(
            {key: f"“{app_name}” runs {dep['blueprint']} {app.version}, outside {dep['range']}."}
        )
    if app.state == AppState.UNINSTALLING:
        raise ValidationError({key: f"“{app_name}” is being uninstalled."})
    return app


def _visit(
    state: _State,
    version: BlueprintVersion,
    name: str,
    values: dict[str, Any],
    alias_path: str,
    stack: list[str],
) -> None:
    bp = version.blueprint.name
    if bp in stack:
        cycle = " → ".join([*stack[stack.index(bp) :], bp])
        raise ValidationError({"dependencies": f"Dependency cycle: {cycle}."})
    stack = [*stack, bp]
    deps: dict[str, str] = {}
    for dep in version.depends:
        alias = dep.get("alias") or dep["blueprint"].removeprefix("bp-")
        path = f"{alias_path}.{alias}" if alias_path else alias
        key = f"dependencies.{path}"
        try:
            applies = when.evaluate(dep.get("when"), values)
        except when.WhenError as exc:
            raise ValidationError(
                {key: f"{bp}: cannot evaluate when “{dep['when']}”: {exc}"}
            ) from None
        if not applies:
            state.skipped.append(
                {"alias": path, "blueprint": dep["blueprint"], "when": dep.get("when", "")}
            )
            continue
        choice = state.choices.get(path, "")
        if choice and choice != NEW:
            app = _existing(state, key, choice, dep)
            _check_outputs(key, version, dep, app.blueprint_version)
            state.uses.append(
                {
                    "alias": path,
                    "application": app.name,
                    "blueprint": app.blueprint.name,
                    "version": app.version,
                }
            )
            deps[alias] = app.name
            continue
        if dep["blueprint"] in stack:
            cycle = " → ".join([*stack[stack.index(dep["blueprint"]) :], dep["blueprint"]])
            raise ValidationError({"dependencies": f"Dependency cycle: {cycle}."})
        available = deployable_versions(dep["blueprint"], state.env.organization.slug)
        chosen = versions.best_match([v.version for v in available], dep["range"])
        if chosen is None:
            have = ", ".join(sorted((v.version for v in available), key=versions.SortKey)) or "none"
            raise ValidationError(
                {
                    key: f"{bp} needs {dep['blueprint']} {dep['range']}, which no catalog version satisfies (available: {have})."
                }
            )
        dep_version = next(v for v in available if v.version == chosen)
        _check_outputs(key, version, dep, dep_version)
        dep_name = f"{name}-{alias}"[:40].rstrip("-")
        dep_values = schema_form.validate(
            dep_version.config_schema, dict(dep.get("values") or {}), prefix=f"{key}.values"
        )
        _visit(state, dep_version, dep_name, dep_values, path, stack)
        deps[alias] = dep_name
    _add(state, version, name, values, alias_path, deps)


def _check_outputs(
    key: str, version: BlueprintVersion, dep: dict[str, Any], serving: BlueprintVersion
) -> None:
    """The serving Blueprint version must offer every output the dependant wires."""
    missing = wiring.missing_outputs(dep, set(serving.spec.get("outputs") or {}))
    if missing:
        raise ValidationError(
            {
                key: f"{serving} offers no {', '.join(missing)}, which {version} wires into its chart."
            }
        )


def _add(
    state: _State,
    version: BlueprintVersion,
    name: str,
    values: dict[str, Any],
    alias_path: str,
    deps: dict[str, str],
) -> None:
    key = f"dependencies.{alias_path}.name" if alias_path else "name"
    if name in state.names or name in state.taken:
        raise ValidationError(
            {
                key: f"An Application named “{name}” already exists in {state.env.name}."
                + (" Choose “use existing” instead." if alias_path else "")
            }
        )
    state.names.add(name)
    state.versions[version.pk] = version
    mode, regions = (
        (state.placement, state.regions)
        if not alias_path
        else _placement_for_dependency(version, state.placement, state.regions)
    )
    state.apps.append(
        {
            "name": name,
            "alias": alias_path,
            "blueprint": version.blueprint.name,
            "version": version.version,
            "version_id": version.pk,
            "values": values,
            "placement": mode,
            "regions": regions,
            "size": state.size,
            "dependencies": deps,
        }
    )


def resolve(**kwargs: Any) -> dict[str, Any]:
    """The complete plan for installing `version` as `name` in `env` (raises ValidationError);
    the arguments of `resolve_applications()`."""
    return resolve_applications(**kwargs)[0]


def resolve_applications(
    *,
    env: Environment,
    version: BlueprintVersion,
    name: str,
    values: dict[str, Any],
    placement: str = Placement.SINGLE.value,
    regions: list[str] | None = None,
    size: str = "small",
    choices: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[Application]]:
    """The complete plan for installing `version` as `name` in `env` (raises ValidationError),
    with the Applications it creates (unsaved, dependencies first) as the wiring check built
    them: a preview renders those instead of reading the versions again."""
    if problem := name_problem(name):
        raise ValidationError({"name": problem})
    if not version.deployable:
        raise ValidationError(
            {"version": f"{version.blueprint.name} {version.version} cannot be installed."}
        )
    blueprint = version.blueprint
    if problem := loader.repository_problem(blueprint.name, version.version, version.spec):
        raise ValidationError({"version": problem})
    if blueprint.visibility == "private" and blueprint.owner_id != env.organization_id:
        # a private Blueprint serves only the Organization that published it (as for dependencies)
        raise ValidationError(
            {"blueprint": f"{blueprint.name} is private to another Organization."}
        )
    if size not in SIZES:
        raise ValidationError({"size": f"Choose one of {', '.join(SIZES)}."})
    values = schema_form.validate(version.config_schema, values)
    check_application_refs(env, version.config_schema, values)
    chosen_regions = validate_placement(
        mode=placement, regions=regions or [], schema=version.placement_schema, env=env
    )
    state = _State(
        env=env,
        placement=placement,
        regions=chosen_regions,
        size=size,
        choices=dict(choices or {}),
        taken=set(
            Application.objects.filter(environment=env, name__startswith=name).values_list(
                "name", flat=True
            )
        ),
    )
    _visit(state, version, name, values, "", [])
    resolved = {
        "environment": env.name,
        "root": name,
        "apps": state.apps,
        "uses": state.uses,
        "skipped": state.skipped,
    }
    return resolved, check_wiring(env, resolved, state.versions)


def unsaved_application(
    env: Environment, spec: dict[str, Any], version: BlueprintVersion
) -> Application:
    """The Application a plan entry describes (not saved: for previews and rendering)."""
    secret_refs = {
        path: {"secret": f"{spec['name']}-credentials", "key": manifests.secret_key(path)}
        for path in schema_form.secret_paths(version.config_schema)
    }
    return Application(
        secret_refs=secret_refs,
        environment=env,
        name=spec["name"],
        blueprint_version=version,
        values=spec["values"],
        size=spec["size"],
        placement=spec["placement"],
        regions=spec["regions"],
        dependencies=spec["dependencies"],
        state=AppState.PENDING,
    )


def plan_applications(
    env: Environment,
    resolved: dict[str, Any],
    versions: dict[int, BlueprintVersion] | None = None,
) -> list[Application]:
    """Every Application a resolved plan creates, unsaved, in order (dependencies first).
    `versions`: the Blueprint versions by id when the caller has them (else read)."""
    wanted = [a["version_id"] for a in resolved["apps"]]
    by_id = dict(versions or {})
    if any(pk not in by_id for pk in wanted):
        by_id = {
            v.pk: v
            for v in BlueprintVersion.objects.filter(pk__in=wanted).select_related("blueprint")
        }
    return [unsaved_application(env, spec, by_id[spec["version_id"]]) for spec in resolved["apps"]]


def check_wiring(
    env: Environment,
    resolved: dict[str, Any],
    versions: dict[int, BlueprintVersion] | None = None,
) -> list[Application]:
    """Evaluate every wiring of the plan (outputs of new and existing dependencies alike);
    returns the plan's Applications (unsaved) it wired."""
    apps = plan_applications(env, resolved, versions)
    peers = {app.name: app for app in apps}
    for app in apps:
        try:
            wiring.wires(app, manifests.dependency_apps(app, peers))
        except wiring.WiringError as exc:
            raise ValidationError({"dependencies": f"Cannot wire {app.name}: {exc}"}) from None
    return apps


def check_application_refs(
    env: Environment, schema: dict[str, Any], values: dict[str, Any]
) -> None:
    """`application-ref` values must name an Application of this Environment (of the Blueprint
    the field asks for, when it says)."""
    errors: dict[str, str] = {}
    for prop in schema_form.walk(schema):
        if prop.hint != "application-ref":
            continue
        name = schema_form.get_path(values, prop.path)
        if not name:
            continue
        app = (
            Application.objects.filter(environment=env, name=str(name))
            .exclude(state=AppState.UNINSTALLING)
            .select_related("blueprint_version__blueprint")
            .first()
        )
        wanted = str(prop.schema.get("x-catalyst-blueprint", ""))
        if app is None:
            errors[f"values.{prop.dotted}"] = f"There is no Application “{name}” in {env.name}."
        elif wanted and app.blueprint.name != wanted:
            errors[f"values.{prop.dotted}"] = f"“{name}” is {app.blueprint.name}, not {wanted}."
    if errors:
        raise ValidationError(errors)


def dependency_options(env: Environment, version: BlueprintVersion) -> list[dict[str, Any]]:
    """For the form: each direct dependency with the existing Applications that could serve it."""
    out = []
    for dep in version.depends:
        alias = dep.get("alias") or dep["blueprint"].removeprefix("bp-")
        bp = Blueprint.objects.filter(name=dep["blueprint"]).first()
        out.append(
            {
                "alias": alias,
                "blueprint": dep["blueprint"],
                "title": bp.title if bp else dep["blueprint"],
                "range": dep["range"],
                "when": dep.get("when", ""),
                "existing": [a.name for a in candidates(env, dep["blueprint"], dep["range"])],
            }
        )
    return out
