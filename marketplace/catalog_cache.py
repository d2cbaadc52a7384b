"""The catalog page's rendered cards and facets, cached on Valkey (issue 12, "Speed").

`CATALOG` is the version (core/versioned.py) of everything the catalog page shows of the
Blueprints: every Blueprint write renews it — `post_save`/`post_delete` here, and the catalog
sync (`loader.store`) and curation's hand-over after their bulk writes, which send no signals.
An entry is used only under the version it was built with, and its key holds the viewer's
scope (`scope_key`: the Organizations whose private Blueprints their grants let them see, or
everything) and every request parameter the fragment depends on: a viewer is served exactly what
their own query would return, never what another scope may see, and a sync or an edit shows up
on the next request in every process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from core.versioned import Version

CATALOG = Version("catalog")


def scope_key(org_slugs: Sequence[str], everything: bool) -> str:
    """Who sees the same Blueprints: every global viewer, or one set of Organizations."""
    return "*" if everything else "|".join(sorted(org_slugs))


def entry(kind: str, scope: str, *params: str) -> str:
    """The cache key of a fragment for this scope and these request parameters."""
    return f"{kind}:{hashlib.sha256(json.dumps([scope, *params]).encode()).hexdigest()}"


def connect() -> None:
    CATALOG.renew_on_write("marketplace.Blueprint")
