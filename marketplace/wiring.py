"""Dependency wiring: what a Blueprint offers to dependants (`outputs`) and how a dependant maps
a dependency's outputs into its chart values (`depends[].wiring`), plus `computed` chart values.

All three are expressions of the safe language in `when.py`, evaluated in a context of

* `values.*`: the Application's install values (with the schema's defaults),
* `app.*`: `name`, `namespace` (the Environment), `release`, `environment`, `organization`,
* `<alias>.*` (wiring only): the outputs of the Application serving that dependency — the same
  for "use existing" and "create new".

An output `{secret: <password field>}` is a `SecretRef` to the key of the Application's generated
credentials Secret: wired into a chart it becomes a HelmRelease `valuesFrom` Secret reference,
never a value in Git.

Chart value paths are dotted (`externalDatabase.host`); a numeric segment is a list index
(`ingress.rules.0.host`) and `\\.` escapes a dot inside a key (`grafana\\.ini.database.type`).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import schema_form, when
from .when import SecretRef, WhenError

if TYPE_CHECKING:
    from .models import Application

CONTEXT_ROOTS = ("values", "app")
_PATH_SEGMENT = re.compile(r"(?:[^.\\]|\\.)+")
PATH_RE = re.compile(
    r"^(?:[A-Za-z0-9_/-]|\\\.)(?:[A-Za-z0-9_/-]|\\\.)*(?:\.(?:[A-Za-z0-9_/-]|\\\.)+)*$"
)


class WiringError(ValueError):
    """An output or wiring expression that cannot be evaluated for this Application."""


def secret_key(path: str) -> str:
    return path.replace(".", "-").replace("_", "-").lower()


def secret_name(app_name: str) -> str:
    return f"{app_name}-credentials"


# --- chart value paths -------------------------------------------------------------------------


def split_path(dotted: str) -> list[str | int]:
    """`a.b\\.c.0.d` → ["a", "b.c", 0, "d"]."""
    parts: list[str | int] = []
    for raw in _PATH_SEGMENT.findall(dotted):
        text = raw.replace("\\.", ".")
        parts.append(int(text) if text.isdigit() else text)
    return parts


def helm_path(dotted: str) -> str:
    """The path as Helm's strvals reads a `valuesFrom` targetPath (`a.b\\.c.list[0].d`)."""
    out = ""
    for part in split_path(dotted):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            escaped = part.replace(".", "\\.")
            out += f".{escaped}" if out else escaped
    return out


def set_value(values: dict[str, Any], dotted: str, value: Any) -> None:
    """Set a chart value; list indices edit the list in place (other items and keys stay)."""
    parts = split_path(dotted)
    node: Any = values
    for part, nxt in itertools.pairwise(parts):
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(part, int):
            while len(node) <= part:
                node.append(None)
            if not isinstance(node[part], (dict, list)):
                node[part] = empty
            node = node[part]
        else:
            if not isinstance(node.get(part), (dict, list)):
                node[part] = empty
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


# --- evaluation ----------------------------------------------------------------------------------


def context(app: Application) -> dict[str, Any]:
    env = app.environment
    version = app.blueprint_version
    return {
        "values": schema_form.with_defaults(version.config_schema, dict(app.values or {})),
        "app": {
            "name": app.name,
            "release": app.name,
            "namespace": env.name,
            "environment": env.name,
            "organization": env.organization.slug,
            "credentials": secret_name(app.name),
        },
    }


def outputs(app: Application) -> dict[str, Any]:
    """What `app` offers to its dependants (values, or SecretRefs to its credentials)."""
    declared = app.blueprint_version.spec.get("outputs") or {}
    ctx = context(app)
    out: dict[str, Any] = {}
    for name, expression in declared.items():
        try:
            out[name] = _output(app, expression, ctx)
        except WhenError as exc:
            raise WiringError(f"{app.name}: output {name} “{expression}”: {exc}") from None
    return out


def _output(app: Application, expression: str | dict[str, str], ctx: dict[str, Any]) -> Any:
    if not isinstance(expression, dict):
        return when.value(expression, ctx)
    if "secret" in expression:  # a password field: a key of the generated credentials Secret
        return SecretRef(secret_name(app.name), secret_key(str(expression["secret"])))
    name, key = when.value(expression["secretName"], ctx), when.value(expression["secretKey"], ctx)
    if not isinstance(name, str) or not isinstance(key, str) or not name or not key:
        raise WhenError("secretName and secretKey must be strings")
    return SecretRef(name, key)  # a Secret the chart or its operator creates


@dataclass(frozen=True)
class Wire:
    """One chart value a dependant sets from a dependency (or from its own values)."""

    alias: str  # "" for a computed value
    path: str
    expression: str
    value: Any

    @property
    def is_secret(self) -> bool:
        return isinstance(self.value, SecretRef)

    @property
    def shown(self) -> str:
        """As it reads in values.yaml (JSON literals), a Secret as its reference."""
        if isinstance(self.value, SecretRef):
            return str(self.value)
        if self.value is None:
            return "(not set)"
        return self.value if isinstance(self.value, str) else json.dumps(self.value)


def alias_of(dep: dict[str, Any]) -> str:
    return str(dep.get("alias") or dep["blueprint"].removeprefix("bp-"))


def wires(app: Application, dependencies: dict[str, Application]) -> list[Wire]:
    """Computed values, then every wiring of the dependencies `app` uses (by alias), in order."""
    spec = app.blueprint_version.spec
    ctx = context(app)
    found: list[Wire] = []
    for path, expression in ((spec.get("manifests") or {}).get("computed") or {}).items():
        found.append(Wire("", path, expression, _evaluate(app, path, expression, ctx)))
    active = [d for d in app.blueprint_version.depends if alias_of(d) in app.dependencies]
    for dep in active:
        alias = alias_of(dep)
        if alias not in dependencies:
            raise WiringError(
                f"{app.name}: dependency {alias} (“{app.dependencies[alias]}”) is not installed"
            )
        ctx[alias] = outputs(dependencies[alias])
    for dep in active:
        for path, expression in (dep.get("wiring") or {}).items():
            value = _evaluate(app, path, expression, ctx)
            found.append(Wire(alias_of(dep), path, expression, value))
    return found


def _evaluate(app: Application, path: str, expression: str, ctx: dict[str, Any]) -> Any:
    try:
        return when.value(expression, ctx)
    except WhenError as exc:
        raise WiringError(f"{app.name}: {path} ← “{expression}”: {exc}") from None


# --- load-time checks ----------------------------------------------------------------------------


def _roots_problem(expression: str, roots: set[str]) -> str | None:
    if problem := when.check(expression):
        return problem
    unknown = sorted({p.split(".")[0] for p in when.paths(expression)} - roots)
    if unknown:
        return f"refers to {', '.join(unknown)}; use {', '.join(sorted(roots))}"
    return None


def check_spec(spec: dict[str, Any]) -> list[str]:
    """Problems with a Blueprint spec's outputs, computed values and dependency wiring."""
    problems = []
    schema = spec.get("configSchema") or {}
    passwords = set(schema_form.secret_paths(schema))
    for name, expression in (spec.get("outputs") or {}).items():
        if isinstance(expression, dict) and "secret" in expression:
            if expression["secret"] not in passwords:
                problems.append(
                    f"spec.outputs.{name}: “{expression['secret']}” is not a password field of configSchema"
                )
            continue
        texts = list(expression.values()) if isinstance(expression, dict) else [expression]
        for text in texts:
            if problem := _roots_problem(text, set(CONTEXT_ROOTS)):
                problems.append(f"spec.outputs.{name}: {problem}")
    manifests = spec.get("manifests") or {}
    for path, expression in (manifests.get("computed") or {}).items():
        problems += _path_problems(f"spec.manifests.computed.{path}", path)
        if problem := _roots_problem(expression, set(CONTEXT_ROOTS)):
            problems.append(f"spec.manifests.computed.{path}: {problem}")
    for config_path, target in (manifests.get("valuesMap") or {}).items():
        if target is not None:  # null: a config value the chart does not take (used by when/wiring)
            problems += _path_problems(f"spec.manifests.valuesMap.{config_path}", target)
    depends = spec.get("depends") or []
    aliases = {alias_of(d) for d in depends}
    for i, dep in enumerate(depends):
        if alias_of(dep) in CONTEXT_ROOTS:
            problems.append(f"spec.depends[{i}].alias: “{alias_of(dep)}” is reserved")
        for path, expression in (dep.get("wiring") or {}).items():
            where = f"spec.depends[{i}].wiring.{path}"
            problems += _path_problems(where, path)
            if problem := _roots_problem(expression, aliases | set(CONTEXT_ROOTS)):
                problems.append(f"{where}: {problem}")
    return problems


def _path_problems(where: str, path: str) -> list[str]:
    return [] if PATH_RE.match(path) else [f"{where}: “{path}” is not a chart value path"]


def missing_outputs(dep: dict[str, Any], offered: set[str]) -> list[str]:
    """Outputs a dependency's wiring reads that the serving Blueprint version does not offer."""
    alias = alias_of(dep)
    wanted = set()
    for expression in (dep.get("wiring") or {}).values():
        for path in when.paths(expression):
            root, _, rest = path.partition(".")
            if root == alias and rest:
                wanted.add(rest.split(".")[0])
    return sorted(wanted - offered)
