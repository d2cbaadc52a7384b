"""Issue 10 §7: CSV exports neutralise spreadsheet formulas; invitation tokens and voucher codes
never reach the logs (Django's 4xx lines, uvicorn's access log)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from billing import vouchers
from core import audit

pytestmark = pytest.mark.django_db
FORMULAS = ['=HYPERLINK("http://evil.test")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def _rows(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_audit_export_neutralises_formulas(cast, client_for):
    for text in FORMULAS:
        audit.record(
            "test.formula", actor=cast["owner"], target=audit.Ref("x", "1", text), org_slug="acme"
        )
    rows = _rows(client_for(cast["owner"]).get("/orgs/acme/audit/?format=csv&action=test."))
    reprs = [row[6] for row in rows[1:]]
    assert sorted(reprs) == sorted("'" + t for t in FORMULAS)
    assert all(not r.startswith(("=", "+", "-", "@", "\t", "\r")) for r in reprs)


def test_voucher_export_neutralises_formulas(cast, client_for):
    vouchers.issue_vouchers(
        by=cast["sovereign_operator"],
        terms=vouchers.VoucherTerms(credit_minor=1000, description="=cmd|' /C calc'!A0"),
    )
    rows = _rows(client_for(cast["sovereign_operator"]).get("/bss/vouchers/export.csv"))
    header, row = rows[0], rows[1]
    assert row[header.index("description")] == "'=cmd|' /C calc'!A0"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the portal's console handler writes (with its filters), captured."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    old = handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    handler.setStream(old)  # type: ignore[attr-defined]


def test_tokens_and_codes_never_reach_the_logs(cast, client_for, log_lines):
    token = "invitation-secret-token-123"
    assert client_for(cast["outsider"]).get(f"/invitations/{token}/").status_code == 404
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "203.0.113.7",
        "GET",
        "/redeem/?code=VCH-SECRETCODE99",
        "1.1",
        200,
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "203.0.113.7", "GET", f"/invitations/{token}/", "1.1", 404
    )
    text = log_lines.getvalue()
    assert "Not Found: /invitations/[redacted]/" in text, text
    assert "/redeem/?code=[redacted]" in text
    assert token not in text and "VCH-SECRETCODE99" not in text
