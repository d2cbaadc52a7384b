"""LOG_FORMAT=json: each log line is a JSON object carrying the request id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging, django
django.setup()
from core import context
logging.getLogger("portal.test").warning("hello outside a request")
token = context.bind(context.RequestMeta(request_id="req-abc-12345"))
logging.getLogger("portal.test").info("inside a request")
context.reset(token)
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("portal.test").exception("it failed")
"""


def test_json_log_lines_carry_level_logger_request_id_and_exception(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "catalyst_portal.settings",
            "PORTAL_VAR_DIR": str(tmp_path),
            "LOG_FORMAT": "json",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    hello = next(line for line in lines if line["message"] == "hello outside a request")
    assert hello["level"] == "WARNING" and hello["logger"] == "portal.test"
    assert hello["request_id"] == "-" and hello["time"].endswith("+00:00")
    inside = next(line for line in lines if line["message"] == "inside a request")
    assert inside["request_id"] == "req-abc-12345" and inside["level"] == "INFO"
    failed = next(line for line in lines if line["message"] == "it failed")
    assert "ValueError: boom" in failed["exception"]
