"""Password hashing: Argon2id at OWASP's recommended cost (19 MiB of memory, 2 passes, 1 lane).

Django's PBKDF2 (1,000,000 iterations) costs about 0.4 s of CPU a hash on a server core, so 50
people signing in at once need 10 s of two cores whatever the server does. Argon2id is
memory-hard — an attacker's GPU gains far less over the server than against PBKDF2 — and at these
parameters costs about 30 ms: the same burst takes under a second. The cost is a setting
(`PASSWORD_ARGON2_MEMORY_KIB`, `PASSWORD_ARGON2_TIME_COST`); a stored hash made with other
parameters, or with PBKDF2 by an older version, is re-hashed with these at the next sign-in
(Django's `must_update`). Memory per process is bounded by `PASSWORD_HASH_CONCURRENCY` hashes
at once (accounts/backends.py).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    """Django's Argon2 hasher (same `argon2$argon2id$…` format) with the cost from settings."""

    parallelism = 1

    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_TIME_COST)

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return int(settings.PASSWORD_ARGON2_MEMORY_KIB)
