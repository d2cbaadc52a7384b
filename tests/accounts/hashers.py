"""A test hasher that notes, at each check, whether the request still holds a database connection."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection

held_during_check: list[bool] = []


class RecordingHasher(MD5PasswordHasher):
    algorithm = "md5"

    def verify(self, password: str, encoded: str) -> Any:
        held_during_check.append(connection.connection is not None)
        return super().verify(password, encoded)
