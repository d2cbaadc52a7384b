"""Shared steps of the billing tests: read and confirm the quote a page shows."""

from __future__ import annotations

import re
from typing import Any

from billing import checkout, quotes
from billing.models import Order


def quote_form(page: Any) -> tuple[str, str]:
    """The confirm form of a quote page: (action, quote token)."""
    html = page.content.decode()
    token = re.search(r'name="quote" value="([^"]+)"', html)
    action = re.search(r'<form method="post" action="([^"]+)" id="confirm-quote"', html)
    assert token and action, html
    return action[1], token[1]


def through_quote(client: Any, response: Any, payment: str = "invoice") -> Any:
    """Follow a form's redirect to its quote page and confirm exactly the quote shown there."""
    assert response.status_code == 302, response.content
    page = client.get(response["Location"])
    assert page.status_code == 200
    action, token = quote_form(page)
    return client.post(action, {"quote": token, "payment": payment})


def order_plan(*, by: Any, org: Any, plan_code: str) -> Order | None:
    """Quote a plan change for `org` and confirm it at once (what the pages do in two steps)."""
    quote = quotes.save(quotes.for_plan_change(by=by, org=org, plan_code=plan_code))
    return checkout.confirm_quote(by=by, quote_id=quote.pk).order
