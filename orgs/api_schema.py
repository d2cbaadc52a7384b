"""The published API schema says what the Organization endpoints accept (issue 10 §9): an
Environment's `regions` are the host clusters its env type may run on (`naming.placement_problem`),
listed per env type as they are when the schema is read, and a slug is none of the reserved words.
A drf-spectacular postprocessing hook (settings.SPECTACULAR_SETTINGS)."""

from __future__ import annotations

from typing import Any

from core.api_schema import reads_database

from .naming import ENV_TYPES, RESERVED, placement_problem


@reads_database
def environment_choices(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    from .models import MAX_REGIONS, HostCluster

    schemas = result.get("components", {}).get("schemas", {})
    if "EnvironmentInput" in schemas:
        clusters = list(HostCluster.objects.order_by("name").values_list("name", "env_type"))
        variants: list[dict[str, Any]] = []
        for env_type in ENV_TYPES:
            names = [n for n, t in clusters if placement_problem(env_type, [(n, t)]) is None]
            if names:
                regions = {"type": "string", "enum": names}
                variants.append(
                    {
                        "type": "object",
                        "properties": {
                            "env_type": {"type": "string", "enum": [env_type]},
                            "regions": {
                                "type": "array",
                                "items": regions,
                                "minItems": 1,
                                "maxItems": MAX_REGIONS,
                            },
                        },
                        "required": ["env_type", "regions"],
                    }
                )
        nothing: dict[str, Any] = {"not": {}}  # no host cluster yet: no Environment possible
        schemas["EnvironmentInput"] = {"oneOf": variants} if variants else nothing
    slug = schemas.get("OrganizationInput", {}).get("properties", {}).get("slug")
    if slug is not None:
        slug["not"] = {"anyOf": [{"enum": sorted(RESERVED)}, {"pattern": "^kube-"}]}
    return result
