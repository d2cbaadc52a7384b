"""The published API schema says what `POST /api/v1/rbac/assign` accepts (issue 10 §9): a user or
a group (exactly one), and scope terms whose keys are the SPEC §4 labels (or `*: *`). A
drf-spectacular postprocessing hook (settings.SPECTACULAR_SETTINGS)."""

from __future__ import annotations

from typing import Any

from .models import GLOBAL
from .services import ENV_LABEL, SCOPE_KEYS

VALUE = {"type": "string", "pattern": "^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$"}
ENV_TYPES_RE = "(dev|stg|prod|uat|poc)"


def _term(keys: list[str], value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"key": {"type": "string", "enum": keys}, "value": value},
        "required": ["key", "value"],
    }


def assign_input(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    schemas = result.get("components", {}).get("schemas", {})
    assign = schemas.get("AssignInput")
    if assign is None:
        return result
    assign["oneOf"] = [
        {"required": ["user"], "not": {"required": ["group"]}},
        {"required": ["group"], "not": {"required": ["user"]}},
    ]
    for name in ("user", "group"):
        assign["properties"][name]["minLength"] = 1
        assign["properties"][name]["pattern"] = r"^\S(.*\S)?$"
    env_name = {"type": "string", "pattern": f"^[a-z][a-z0-9-]{{1,30}}[a-z0-9]-{ENV_TYPES_RE}$"}
    others = [k for k in SCOPE_KEYS if k != ENV_LABEL]
    one_of = [
        _term(others, {"anyOf": [VALUE, {"type": "string", "enum": [GLOBAL]}]}),
        _term([ENV_LABEL], {"anyOf": [env_name, {"type": "string", "enum": [GLOBAL]}]}),
        _term([GLOBAL], {"type": "string", "enum": [GLOBAL]}),
    ]
    assign["properties"]["scope"] = {
        "type": "array",
        "items": {"oneOf": one_of},
        "minItems": 1,
    }
    return result
