"""Seeds derived per run and purpose, so that initialization and data order are independent."""

from __future__ import annotations

import hashlib


def derived_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one purpose ('init', 'order') of one run."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
