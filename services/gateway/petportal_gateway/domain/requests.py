"""Requests the gateway refuses before routing: targets it could not route on exactly as the upstream
will read them, and header values it could not forward (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

MAX_TARGET_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024

# Visible ASCII but "#": uvicorn passes a "#" on to the query with some parsers.
_TARGET_CHARS = re.compile(rb"[\x21\x22\x24-\x7e]*")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# C0, DEL and C1 controls, once percent-decoded: NUL and friends break databases and log lines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e]*")


class RejectedRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def check_target(raw_path: bytes, query: bytes) -> None:
    """`raw_path` as received (still percent-encoded) and the raw query string."""
    if not raw_path.startswith(b"/"):
        raise RejectedRequest(400, "the request target must be a path")
    if len(raw_path) + len(query) > MAX_TARGET_BYTES:
        raise RejectedRequest(414, "request target too long")
    for part, name in ((raw_path, "path"), (query, "query")):
        if not _TARGET_CHARS.fullmatch(part):
            raise RejectedRequest(400, f"invalid character in the {name}")
        if _BAD_ESCAPE.search(part):
            raise RejectedRequest(400, f"invalid percent-encoding in the {name}")
        try:
            decoded = unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError:
            raise RejectedRequest(400, f"the {name} is not UTF-8 once decoded") from None
        if _CONTROL.search(decoded):
            raise RejectedRequest(400, f"control character in the {name}")


def check_headers(headers: Iterable[tuple[bytes, bytes]], forwarded: frozenset[bytes]) -> None:
    """Bounded total size; the values of the `forwarded` (lower-case) headers must be visible ASCII."""
    total = 0
    for name, value in headers:
        total += len(name) + len(value) + 4
        if total > MAX_HEADER_BYTES:
            raise RejectedRequest(431, "request headers too large")
        if name.lower() in forwarded and not _FIELD_VALUE.fullmatch(value):
            raise RejectedRequest(400, f"invalid {name.lower().decode()} header")
