"""Install forms generated server-side from a Blueprint's `configSchema`, validated by jsonschema.

Supported: string / number / integer / boolean / enum, defaults, minimum / maximum, pattern,
min/maxLength, required, nested objects (fields named `parent__child`), arrays of simple values
(one per line, or checkboxes for an enum), descriptions, `x-catalyst-ui-hint` password / domain /
application-ref, and `x-catalyst-advanced: true` for the "advanced" section.

Password fields never take a value: the secret is generated in-cluster and the values only hold a
reference (see `manifests.py`), so no secret reaches Git, the database or a log.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError as SchemaValidationError

from core.text import whole_match


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(whole_match(pattern))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """JSON Schema `pattern` with ECMA-262 semantics: `$` is the end of the value, so `^a+$` does
    not accept `"aaa\n"` (Python's `$` would)."""
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield SchemaValidationError(f"{instance!r} does not match {pattern!r}")


AnchoredValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})

HINT = "x-catalyst-ui-hint"
ADVANCED = "x-catalyst-advanced"
SEP = "__"


@dataclass(frozen=True)
class Prop:
    path: tuple[str, ...]
    schema: dict[str, Any]
    required: bool
    advanced: bool

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def field_name(self) -> str:
        return SEP.join(self.path)

    @property
    def hint(self) -> str:
        return str(self.schema.get(HINT, ""))


def walk(
    schema: dict[str, Any], path: tuple[str, ...] = (), advanced: bool = False
) -> Iterator[Prop]:
    """Every leaf property of an object schema, depth first, in declaration order."""
    required = set(schema.get("required") or [])
    for name, sub in (schema.get("properties") or {}).items():
        sub = sub if isinstance(sub, dict) else {}
        adv = advanced or bool(sub.get(ADVANCED))
        if sub.get("type") == "object" and "properties" in sub:
            yield from walk(sub, (*path, name), adv)
        else:
            yield Prop((*path, name), sub, name in required, adv)


def secret_paths(schema: dict[str, Any]) -> list[str]:
    return [p.dotted for p in walk(schema) if p.hint == "password"]


def without_secrets(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with password properties removed (they are generated, never entered)."""
    schema = copy.deepcopy(schema)

    def strip(node: dict[str, Any]) -> None:
        props = node.get("properties") or {}
        for name in [
            n for n, s in props.items() if isinstance(s, dict) and s.get(HINT) == "password"
        ]:
            del props[name]
            if name in (node.get("required") or []):
                node["required"] = [r for r in node["required"] if r != name]
        for sub in props.values():
            if isinstance(sub, dict) and sub.get("type") == "object":
                strip(sub)

    strip(schema)
    return schema


def get_path(values: dict[str, Any], path: tuple[str, ...] | list[str]) -> Any:
    node: Any = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_path(values: dict[str, Any], path: tuple[str, ...] | list[str], value: Any) -> None:
    node = values
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def with_defaults(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the schema's defaults filled in where nothing was given."""
    out = copy.deepcopy(values)
    for prop in walk(schema):
        if "default" in prop.schema and get_path(out, prop.path) is None:
            set_path(out, prop.path, copy.deepcopy(prop.schema["default"]))
    return out


def _json_path(error: Any) -> list[tuple[str, str]]:
    base = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in (error.instance or {})]
        return [(".".join([*base, m]), "This field is required.") for m in missing]
    if error.validator == "additionalProperties":
        return [(".".join(base) or "values", error.message)]
    message = error.schema.get("x-catalyst-error") or _friendly(error)
    return [(".".join(base) or "values", message)]


EMAIL = "Enter an e-mail address like name@example.com."
FORMATS = {
    "email": EMAIL,
    "idn-email": EMAIL,
    "hostname": "Enter a host name like app.example.com.",
    "idn-hostname": "Enter a host name like app.example.com.",
    "uri": "Enter a URL like https://example.com/.",
    "ipv4": "Enter an IPv4 address like 192.0.2.10.",
    "date": "Enter a date like 2026-01-31.",
}


def _pattern_message(schema: dict[str, Any]) -> str:
    """A pattern mismatch in plain words, with an example where the schema gives one."""
    pattern = str(schema.get("pattern", ""))
    if schema.get("format") in FORMATS:
        return FORMATS[schema["format"]]
    if "@" in pattern:
        return EMAIL
    if schema.get("x-catalyst-ui-hint") == "domain":
        return "Enter a domain like app.example.com."
    example = (schema.get("examples") or [schema.get("default")])[0]
    title = str(schema.get("title") or "a value").lower()
    if example not in (None, ""):
        return f"Enter {title} like {example}."
    return f"Enter {title} in the expected format."


def _friendly(error: Any) -> str:
    kind, value = error.validator, error.validator_value
    messages = {
        "minimum": f"Enter a number of at least {value}.",
        "maximum": f"Enter a number of at most {value}.",
        "minLength": f"Enter at least {value} characters.",
        "maxLength": f"Enter at most {value} characters.",
        "type": f"Enter a value of type {value}.",
        "maxItems": f"Give at most {value} items.",
        "minItems": f"Give at least {value} items.",
    }
    if kind == "pattern":
        return _pattern_message(error.schema)
    if kind == "format":
        return FORMATS.get(value, f"Enter a valid {value}.")
    if kind == "enum":
        return "Select one of: " + ", ".join(str(v) for v in value or []) + "."
    return messages.get(kind, error.message)


def validate(schema: dict[str, Any], values: Any, *, prefix: str = "values") -> dict[str, Any]:
    """`values` with defaults, or ValidationError {"values.a.b": [message]} (JSON paths)."""
    if not isinstance(values, dict):
        raise ValidationError({prefix: ["Values must be an object."]})
    checked = without_secrets(schema)
    secret_given = [p for p in secret_paths(schema) if get_path(values, p.split(".")) is not None]
    if secret_given:
        raise ValidationError(
            {
                f"{prefix}.{p}": ["Secrets are generated in the cluster; do not send them."]
                for p in secret_given
            }
        )
    complete = with_defaults(checked, values)
    validator = AnchoredValidator(checked, format_checker=FormatChecker())
    errors: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(complete), key=lambda e: list(e.absolute_path)):
        for path, message in _json_path(error):
            found = errors.setdefault(f"{prefix}.{path}" if path != "values" else prefix, [])
            if message not in found:
                found.append(message)
    if errors:
        raise ValidationError(errors)
    return complete


# --- the form ----------------------------------------------------------------------------------


def _field(prop: Prop, app_choices: list[tuple[str, str]]) -> forms.Field | None:
    s, required = prop.schema, prop.required
    common: dict[str, Any] = {
        "label": s.get("title") or prop.path[-1].replace("_", " ").capitalize(),
        "help_text": s.get("description", ""),
        "required": required,
        "initial": s.get("default"),
    }
    kind = s.get("type")
    if prop.hint == "password":
        return None
    if prop.hint == "application-ref":
        return forms.ChoiceField(choices=[("", "—"), *app_choices], **common)
    if "enum" in s:
        return forms.ChoiceField(choices=[(v, v) for v in s["enum"]], **common)
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "integer":
        return forms.IntegerField(min_value=s.get("minimum"), max_value=s.get("maximum"), **common)
    if kind == "number":
        return forms.DecimalField(min_value=s.get("minimum"), max_value=s.get("maximum"), **common)
    if kind == "array":
        items = s.get("items") or {}
        if "enum" in items:
            return forms.MultipleChoiceField(
                choices=[(v, v) for v in items["enum"]],
                widget=forms.CheckboxSelectMultiple,
                **{**common, "required": required and bool(s.get("minItems"))},
            )
        common["help_text"] = (common["help_text"] + " One per line.").strip()
        return forms.CharField(
            widget=forms.Textarea(attrs={"rows": 3}),
            **{**common, "initial": "\n".join(str(v) for v in s.get("default") or [])},
        )
    attrs: dict[str, Any] = {}
    if "pattern" in s:
        attrs["pattern"] = s["pattern"]
    if prop.hint == "domain":
        attrs.update(
            {"placeholder": "app.example.com", "autocapitalize": "none", "spellcheck": "false"}
        )
    return forms.CharField(
        min_length=s.get("minLength"),
        max_length=s.get("maxLength"),
        widget=forms.TextInput(attrs=attrs),
        strip=True,
        **common,
    )


def _to_json(prop: Prop, value: Any) -> Any:
    kind = prop.schema.get("type")
    if value in (None, "") and kind != "boolean":
        return None
    if kind == "array" and isinstance(value, str):
        items = [line.strip() for line in value.splitlines() if line.strip()]
        item_type = (prop.schema.get("items") or {}).get("type")
        if item_type in ("integer", "number"):
            try:
                return [int(i) if item_type == "integer" else float(i) for i in items]
            except ValueError:
                return items
        return items
    if isinstance(value, Decimal):
        return int(value) if value == int(value) else float(value)
    return value


class SchemaForm(forms.Form):
    """A form for one configSchema. `values` holds the nested JSON once `is_valid()`."""

    def __init__(
        self,
        *args: Any,
        schema: dict[str, Any],
        app_choices: dict[str, list[tuple[str, str]]] | None = None,
        initial_values: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema
        self.props = {p.field_name: p for p in walk(schema)}
        self.secret_fields = [p for p in self.props.values() if p.hint == "password"]
        self.values: dict[str, Any] = {}
        for name, prop in self.props.items():
            blueprint = str(prop.schema.get("x-catalyst-blueprint", ""))
            field = _field(prop, (app_choices or {}).get(blueprint, []))
            if field is None:
                continue
            current = get_path(initial_values or {}, prop.path)
            if current is not None:
                field.initial = (
                    "\n".join(map(str, current))
                    if isinstance(current, list) and isinstance(field.widget, forms.Textarea)
                    else current
                )
            self.fields[name] = field

    def basic_fields(self) -> list[forms.BoundField]:
        return [self[n] for n, p in self.props.items() if n in self.fields and not p.advanced]

    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[n] for n, p in self.props.items() if n in self.fields and p.advanced]

    def clean(self) -> dict[str, Any]:
        """One pass: the schema checks every field the form could read, even when another field
        has a form error, so all problems are reported together (once each)."""
        cleaned = super().clean() or {}
        values: dict[str, Any] = {}
        for name, prop in self.props.items():
            if name not in self.fields or name in self.errors:
                continue
            value = _to_json(prop, cleaned.get(name))
            if value is not None:
                set_path(values, prop.path, value)
        try:
            self.values = validate(self.schema, values)
        except ValidationError as exc:
            self.apply(exc)
        return cleaned

    def apply(self, exc: ValidationError) -> None:
        """Put `values.a.b` errors on the `a__b` field (or the form); a field that already has an
        error (from the form, or an earlier message) gets no second one for the same problem."""
        for path, found in exc.message_dict.items():
            parts = path.removeprefix("values").removeprefix(".").split(".")
            while parts and parts[-1].isdigit():  # an array item's error goes on the array field
                parts.pop()
            name = SEP.join(parts)
            field = name if name in self.fields else None
            if field is not None and field in self.errors:
                continue  # the form already said what is wrong with this field
            known = self.non_field_errors() if field is None else []
            fresh = [m for m in dict.fromkeys(found) if m not in known]
            if fresh:
                self.add_error(field, fresh)
