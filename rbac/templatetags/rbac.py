from typing import Any

from django import template

from gitops import naming
from rbac import access

register = template.Library()


@register.simple_tag(takes_context=True)
def can(context: dict[str, Any], action: str, target: Any) -> bool:
    """{% can "environments.create" org as may_create %}: hide controls the user may not use."""
    return access.can(context["request"].user, action, target)


# how a scope term reads in a sentence ("viewer of the Environment acme-dev")
SCOPE_WORDS = {
    "environment": "the Environment {value}",
    "env-type": "every {value} Environment",
    "application": "the Application {value}",
    "blueprint": "Applications of {value}",
    "vcluster": "the vcluster {value}",
    "host-cluster": "the host cluster {value}",
}


@register.filter
def scope_words(scopes: list[dict[str, str]] | None) -> str:
    """A grant's or invitation's scope in plain words: the Organization term is implied when a
    narrower one is there (terms are ANDed); `*` reads as "any"."""
    given = {term.get("key", ""): term.get("value", "") for term in scopes or []}
    if "*" in given:
        return "everything on the Sovereign"
    given.pop(naming.ORGANIZATION_LABEL, None)
    app, env = given.get(naming.APPLICATION_LABEL), given.get(naming.ENVIRONMENT_LABEL)
    terms = []
    if app and env and "*" not in (app, env):  # an Application is named within its Environment
        terms.append(f"the Application {app} in {env}")
        del given[naming.APPLICATION_LABEL], given[naming.ENVIRONMENT_LABEL]
    for key, value in given.items():
        template = SCOPE_WORDS.get(key.removeprefix(naming.LABEL_PREFIX), key + "={value}")
        terms.append(template.format(value="any" if value == "*" else value))
    return " and ".join(terms) or "the whole Organization"
