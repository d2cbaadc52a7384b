"""Check the values a Blueprint sets against the real chart (its default `values.yaml` and, where
the chart ships one, `values.schema.json`), as kept under `CHART_SPECS_DIR/<chart>/<version>/`.

Helm ignores unknown keys, so a misspelt or moved key silently does nothing on a cluster; this
module finds them before a commit. It follows what chart authors write:

* a key is known when the chart's `values.yaml` has it, or documents it as a comment (Helm's
  `# key: value` convention, nested comments included, `# - item` list entries too);
* a map whose default is `{}` or `null`, or a chart's free-form configuration map
  (`FREE_FORM`: ini sections such as `gitea.config` or `grafana.ini`), takes any key;
* list items are checked against the keys of the chart's own default items;
* keys under a sub-chart's name or alias belong to that sub-chart: checked against its values
  when its chart is known here (any version satisfying the dependency's range), else accepted;
* types: a map where the chart has a string (keycloakx's `extraEnv` is a template string), a
  list where it has a map, a string where it has a boolean... are errors; the schema, when there
  is one, validates the chart defaults merged with the values.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from jsonschema import Draft7Validator

from . import versions

Path_ = tuple[str, ...]
ITEM = "*"  # a list item in a generalised path

# Free-form configuration maps, passed through to the application's own configuration: "ini"
# takes sections of plain values (app.ini, grafana.ini), "env" plain values (environment
# variables), "any" whatever the application's YAML configuration takes.
FREE_FORM: dict[str, dict[Path_, str]] = {
    "gitea": {("gitea", "config"): "ini"},  # values.yaml: app.ini sections (`#  security:` ...)
    "grafana": {("grafana.ini",): "ini"},
    "librechat": {("librechat", "configEnv"): "env"},  # "Full list of possible values"
    "loki": {("loki", "limits_config"): "any"},  # Loki's own limits_config block
    "matrix-synapse": {("extraConfig",): "any"},  # "Specify arbitrary Synapse configuration"
    "mattermost-team-edition": {("config",): "env"},  # MM_* settings as environment variables
}
_PARAM_LIST = re.compile(r"^\s*##\s*@param\s+(?P<path>\S+)\s+(Array|List)\b")

_COMMENTED_KEY = re.compile(
    r"^(?P<indent>\s*)#+(?P<pad>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_][\w.-]*):(\s|$)"
)
_REAL_KEY = re.compile(
    r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_][\w.-]*|\"[^\"]+\"):(\s|$)"
)


@dataclass
class Chart:
    name: str
    version: str
    values: dict[str, Any]
    commented: set[Path_]
    schema: dict[str, Any] | None
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    documented_lists: set[Path_] = field(default_factory=set)

    def subchart(self, key: str) -> tuple[bool, Chart | None]:
        """(is `key` a sub-chart of this chart, its Chart when known here)."""
        for dep in self.dependencies:
            if key in (dep.get("alias"), dep.get("name")):
                return True, find_chart(str(dep.get("name")), str(dep.get("version") or ""))
        return False, None


def specs_dir() -> Path:
    return Path(settings.CHART_SPECS_DIR)


def commented_keys(text: str) -> set[Path_]:
    """Paths documented only as comments in a values.yaml (`# key: value` at the key's indent).

    Real keys and commented keys share one stack of (indent, path): a commented key's parent is
    the nearest key above it with a smaller indent, commented or not."""
    found: set[Path_] = set()
    stack: list[tuple[int, Path_]] = []
    for line in text.splitlines():
        real = _REAL_KEY.match(line)
        note = None if real else _COMMENTED_KEY.match(line)
        match = real or note
        if match is None:
            continue
        base = len(match.group("indent"))
        if note is not None:  # `# key:` sits where the key would: the `#` takes one column
            base += max(len(note.group("pad")) - 1, 0)
        while stack and stack[-1][0] >= base:
            stack.pop()
        parent = stack[-1][1] if stack else ()
        if match.group("dash"):  # `- key:` opens a list item; its keys sit after the dash
            parent = (*parent, ITEM)
            stack.append((base, parent))
            base += len(match.group("dash"))
        path = (*parent, match.group("key").strip('"'))
        stack.append((base, path))
        if note is not None:
            found.add(path)
    return found


@cache
def _load(name: str, version: str, root: str) -> Chart | None:
    base = Path(root) / name / version
    values_file = base / "values.yaml"
    if not values_file.is_file():
        return None
    text = values_file.read_text(encoding="utf-8")
    schema_file = base / "values.schema.json"
    chart_file = base / "Chart.yaml"
    meta = yaml.safe_load(chart_file.read_text()) if chart_file.is_file() else {}
    return Chart(
        name=name,
        version=version,
        values=yaml.safe_load(text) or {},
        commented=commented_keys(text),
        schema=json.loads(schema_file.read_text()) if schema_file.is_file() else None,
        dependencies=list((meta or {}).get("dependencies") or []),
        documented_lists={
            tuple(m.group("path").split("."))
            for m in map(_PARAM_LIST.match, text.splitlines())
            if m is not None
        },
    )


def find_chart(name: str, version_or_range: str) -> Chart | None:
    """The chart at this exact version, or the newest known one satisfying a dependency range
    (`18.x.x`, `^12.1.4`); None when none is known."""
    root = specs_dir()
    exact = _load(name, version_or_range, str(root))
    if exact is not None or not (root / name).is_dir():
        return exact
    wanted = version_or_range.replace(".x", "").replace("x", "") or "*"
    known = sorted(
        (p.name for p in (root / name).iterdir() if versions.is_version(p.name)),
        key=versions.SortKey,
        reverse=True,
    )
    for candidate in known:
        try:
            if versions.satisfies(candidate, wanted if wanted[0] in "^~<>=*" else f"~{wanted}"):
                return _load(name, candidate, str(root))
        except versions.RangeError:
            return None
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def _dotted(path: Path_) -> str:
    return ".".join(path)


@dataclass
class _Check:
    chart: Chart
    free_form: dict[Path_, str]
    problems: list[str] = field(default_factory=list)
    prefix: Path_ = ()

    def error(self, path: Path_, message: str) -> None:
        self.problems.append(f"{_dotted((*self.prefix, *path))}: {message}")

    def generalised(self, path: Path_) -> Path_:
        return tuple(ITEM if p.isdigit() else p for p in path)

    def documented(self, path: Path_) -> bool:
        return self.generalised(path) in self.chart.commented

    def documented_children(self, path: Path_) -> bool:
        general = self.generalised(path)
        return any(
            p[: len(general)] == general and len(p) > len(general) for p in self.chart.commented
        )

    def value(self, path: Path_, ours: Any, default: Any, *, known: bool) -> None:
        """Check `ours` at `path`; `default` is the chart's value there (`known`: it has one)."""
        if ours is None:
            return  # null removes the chart's default (Helm)
        if self.generalised(path) in self.free_form:
            self.free(path, ours, self.free_form[self.generalised(path)])
            return
        if len(path) == 1 and path[0] != "global":
            is_sub, sub = self.chart.subchart(path[0])
            if is_sub:
                self.subchart(path, ours, default if known else None, sub)
                return
        if not known:
            if self.documented(path):
                if isinstance(ours, dict) and self.documented_children(path):
                    for key, item in ours.items():
                        self.value((*path, str(key)), item, None, known=False)
                return
            self.error(path, f"not a value of {self.chart.name} {self.chart.version}")
            return
        if default is None:
            return  # the chart leaves it to you
        if isinstance(ours, dict):
            if not isinstance(default, dict):
                self.error(path, f"is a {_kind(default)} in the chart, not a map")
                return
            if not default:
                return  # `{}`: a free map (annotations, labels, extra settings)
            for key, item in ours.items():
                self.value((*path, str(key)), item, default.get(key), known=key in default)
            return
        if isinstance(ours, list):
            if self.generalised(path) in self.chart.documented_lists:
                return  # `## @param key Array ...`: the template takes a list as well
            if not isinstance(default, list):
                self.error(path, f"is a {_kind(default)} in the chart, not a list")
                return
            self.items(path, ours, default)
            return
        if isinstance(default, (dict, list)):
            self.error(path, f"is a {_kind(default)} in the chart, not a {_kind(ours)}")
        elif _kind(default) != _kind(ours):
            self.error(path, f"is a {_kind(default)} in the chart, not a {_kind(ours)} ({ours!r})")

    def items(self, path: Path_, ours: list[Any], default: list[Any]) -> None:
        if not default:
            return  # an empty default list takes any items
        example: dict[str, Any] = {}
        for item in default:
            if isinstance(item, dict):
                example.update(item)
        for index, item in enumerate(ours):
            here = (*path, str(index))
            if isinstance(item, dict) and example:
                for key, sub in item.items():
                    self.value((*here, str(key)), sub, example.get(key), known=key in example)
            elif isinstance(item, dict) or example:
                kind = "maps" if example else f"{_kind(default[0])}s"
                if _kind(item) != ("map" if example else _kind(default[0])):
                    self.error(here, f"the chart's items are {kind}, not a {_kind(item)}")
            elif _kind(item) != _kind(default[0]) and default[0] is not None:
                self.error(here, f"the chart's items are {_kind(default[0])}s, not a {_kind(item)}")

    def free(self, path: Path_, ours: Any, mode: str, depth: int = 0) -> None:
        if mode == "any":
            return
        if isinstance(ours, dict):
            if depth >= (2 if mode == "ini" else 1):
                self.error(path, f"free-form {mode} configuration takes plain values here")
                return
            for key, item in ours.items():
                self.free((*path, str(key)), item, mode, depth + 1)
        elif isinstance(ours, list):
            self.error(path, f"free-form {mode} configuration takes plain values, not a list")

    def subchart(self, path: Path_, ours: Any, parent_default: Any, sub: Chart | None) -> None:
        """Keys under a sub-chart: its own values, plus what the parent sets for it (`enabled`)."""
        if not isinstance(ours, dict):
            self.error(path, f"{path[0]} is a sub-chart: set a map of its values")
            return
        parent = parent_default if isinstance(parent_default, dict) else {}
        if sub is None:  # not known here: only what the parent documents can be checked
            for key, item in ours.items():
                if key in parent:
                    self.value((*path, str(key)), item, parent[key], known=True)
            return
        merged = _merge(sub.values, parent)
        inner = _Check(sub, _free_form(sub.name), prefix=(*self.prefix, *path))
        inner.chart = Chart(
            sub.name,
            sub.version,
            merged,
            sub.commented,
            None,
            sub.dependencies,
            sub.documented_lists,
        )
        for key, item in ours.items():
            inner.value((str(key),), item, merged.get(key), known=key in merged)
        self.problems += inner.problems


def _free_form(chart: str) -> dict[Path_, str]:
    return FREE_FORM.get(chart, {})


def _schema_problems(chart: Chart, values: dict[str, Any]) -> list[str]:
    if not chart.schema:
        return []
    merged = _merge(chart.values, values)
    ours = {tuple(str(p) for p in path) for path, _ in leaves(values)}
    out = []
    for error in Draft7Validator(chart.schema).iter_errors(merged):
        path = tuple(str(p) for p in error.absolute_path)
        if any(o[: len(path)] == path or path[: len(o)] == o for o in ours):
            out.append(f"{_dotted(path)}: refused by the chart's schema: {error.message}")
    return out


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _merge(base.get(key), value)
        return out
    return copy.deepcopy(extra)


def leaves(values: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    if isinstance(values, dict) and values:
        return [leaf for k, v in values.items() for leaf in leaves(v, (*path, str(k)))]
    return [(path, values)]


def check(chart: Chart, values: dict[str, Any]) -> list[str]:
    """Every problem with `values` for this chart ([] when each key exists with a fitting type)."""
    run = _Check(chart, _free_form(chart.name))
    for key, item in values.items():
        run.value((str(key),), item, chart.values.get(key), known=key in chart.values)
    return run.problems + _schema_problems(chart, values)


def check_release(name: str, version: str, values: dict[str, Any]) -> list[str] | None:
    """Problems with `values` for chart `name` `version`; None when that chart is not known here."""
    chart = find_chart(name, version)
    return None if chart is None or chart.version != version else check(chart, values)
