"""JSON log lines (LOG_FORMAT=json): one object a line, for a log collector to index.

Fields: `time` (ISO 8601, UTC), `level`, `logger`, `request_id` (the request's id, "-" outside a
request: core.middleware.RequestIdLogFilter), `message`, and `exception` (the formatted
traceback) when there is one.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
