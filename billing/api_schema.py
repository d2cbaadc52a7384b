"""The published API schema says what a quote accepts (issue 10 §9): the plans and add-ons of the
price book that have a price in force in the Sovereign's currency, as they are when the schema is
read, and add-on quantities within bounds. A drf-spectacular postprocessing hook
(settings.SPECTACULAR_SETTINGS)."""

from __future__ import annotations

from typing import Any

from core.api_schema import reads_database

from .pricing import MAX_ADDON_QUANTITY, PriceBook


@reads_database
def quote_choices(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    quote = result.get("components", {}).get("schemas", {}).get("QuoteInput")
    if quote is None:
        return result
    book = PriceBook()
    plans = sorted(
        code
        for code, (plan, price) in book.plans.items()
        if plan.is_active and price is not None and price.currency == book.currency
    )
    addons = sorted(
        code
        for code, (addon, price) in book.addons.items()
        if addon.is_active
        and addon.kind == "addon"
        and price is not None
        and price.currency == book.currency
    )
    quantity = {"type": "integer", "minimum": 1, "maximum": MAX_ADDON_QUANTITY}
    props = quote["properties"]
    nothing: dict[str, Any] = {"not": {}}  # no priced plan yet: no quote possible
    props["plan"] = {"type": "string", "enum": plans} if plans else nothing
    props["addons"] = {
        "type": "object",
        "properties": {code: quantity for code in addons},
        "additionalProperties": False,
    }
    return result
