"""Validate every rendered manifest before it is committed.

Flux kinds are checked against the CRD schemas in FLUX_CRDS_DIR (../shared/specs/flux-crds);
Catalyst kinds against gitops/schemas/catalyst.yaml. A YAML file without apiVersion/kind (a Helm
values file) is only parsed. Anything else that claims an apiVersion must at least be a well-formed
Kubernetes object.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from jsonschema import Draft7Validator

FLUX_GROUPS = ("kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io", "source.toolkit.fluxcd.io")
CATALYST_GROUPS = ("catalyst.openova.io", "orgs.openova.io")
_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"type": "string", "minLength": 1},
        "kind": {"type": "string", "minLength": 1},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"},
                "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 63},
                },
            },
        },
    },
}


class ManifestError(ValueError):
    pass


@cache
def _validators() -> dict[tuple[str, str], Draft7Validator]:
    found: dict[tuple[str, str], Draft7Validator] = {}
    crd_dir = Path(settings.FLUX_CRDS_DIR)
    for crd_file in sorted(crd_dir.glob("*.yaml")) if crd_dir.is_dir() else []:
        for crd in yaml.safe_load_all(crd_file.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                found[(f"{group}/{version['name']}", kind)] = Draft7Validator(schema)
    catalyst = yaml.safe_load((Path(__file__).parent / "schemas" / "catalyst.yaml").read_text())
    for api_version, kinds in catalyst.items():
        for kind, schema in kinds.items():
            found[(api_version, kind)] = Draft7Validator(schema)
    return found


def _errors(validator: Draft7Validator, doc: Any) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]


_OBJECT_VALIDATOR = Draft7Validator(_OBJECT_SCHEMA)


def validate_manifest(doc: dict[str, Any]) -> list[str]:
    """The problems with one manifest document ([] when valid)."""
    problems = _errors(_OBJECT_VALIDATOR, doc)
    if problems:
        return problems
    api_version, kind = doc["apiVersion"], doc["kind"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    validator = _validators().get((api_version, kind))
    if validator is None and group in FLUX_GROUPS + CATALYST_GROUPS:
        where = (
            f" (no CRDs found in FLUX_CRDS_DIR={settings.FLUX_CRDS_DIR})"
            if group in FLUX_GROUPS
            else ""
        )
        return [f"unknown kind {kind} in {api_version}{where}"]
    return _errors(validator, doc) if validator else []


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: same safety


# Texts found valid lately (their digests): validity depends on the text alone, so a file
# rendered again the same (a re-delivery, a rollback restoring earlier files, the unchanged config
# tree of a size change) is not parsed and checked again. Bounded; invalid texts are not kept.
_VALID: OrderedDict[bytes, None] = OrderedDict()
_VALID_MAX = 2048
_valid_lock = threading.Lock()


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def validate_files(files: dict[str, str]) -> None:
    """Raise ManifestError naming every file and field that is wrong."""
    problems: list[str] = []
    for path, text in sorted(files.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        digest = _digest(text)
        with _valid_lock:
            if digest in _VALID:
                _VALID.move_to_end(digest)
                continue
        found = _problems(path, text)
        if found:
            problems += found
            continue
        with _valid_lock:
            _VALID[digest] = None
            if len(_VALID) > _VALID_MAX:
                _VALID.popitem(last=False)
    if problems:
        raise ManifestError("; ".join(problems))


def _problems(path: str, text: str) -> list[str]:
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as exc:
        return [f"{path}: not valid YAML: {exc}"]
    return [
        f"{path}[{index}] {doc.get('kind')}: {problem}"
        for index, doc in enumerate(docs)
        if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc
        for problem in validate_manifest(doc)
    ]
