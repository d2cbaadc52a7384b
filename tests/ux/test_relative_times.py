"""Issue 15, "Readable data": when something happened reads as a relative time ("3 min ago") with
the exact UTC time on hover (`<time datetime title>`), on every page that lists past events."""

from __future__ import annotations

import re

import pytest

from accounts.services import create_api_token
from billing import ledger, vouchers
from tests.billing.helpers import order_plan

pytestmark = pytest.mark.django_db

RELATIVE = re.compile(
    r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">(?:just now|[^<]* ago)</time>'
)


def _relative_times(html: str) -> int:
    return len(RELATIVE.findall(html))


def test_past_events_read_as_relative_times_with_the_exact_time_on_hover(cast, client_for):
    voucher = vouchers.issue_vouchers(by=None, terms=vouchers.VoucherTerms(credit_minor=5000))[0]
    ledger.append(org=cast["acme"], amount_minor=1000, reason="test")
    order_plan(by=cast["owner"], org=cast["acme"], plan_code="m")
    create_api_token(user=cast["owner"], name="ci")
    operator, owner = client_for(cast["sovereign_operator"]), client_for(cast["owner"])
    pages = {
        f"/bss/vouchers/{voucher.pk}/": (operator, 2),  # issued, the audit event
        "/bss/orders/": (operator, 1),  # placed
        "/bss/customers/acme/": (operator, 1),  # the ledger entry
        "/billing/acme/": (owner, 2),  # the order placed, the ledger entry
        "/account/tokens/": (owner, 1),  # created
    }
    for url, (client, at_least) in pages.items():
        html = client.get(url).content.decode()
        assert _relative_times(html) >= at_least, url
    assert client_for(cast["owner"]).get(f"/bss/vouchers/{voucher.pk}/").status_code == 404
