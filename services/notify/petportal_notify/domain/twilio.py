"""Twilio's webhook signature (`X-Twilio-Signature`), as Twilio computes it: base64 of HMAC-SHA1, keyed
with the account's auth token, over the full URL Twilio requested followed by every POST parameter's
name and value, sorted by name (then value), with no delimiters."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(auth_token: str, url: str, params: Iterable[tuple[str, str]], header: str | None) -> bool:
    if not header:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode(), header.strip().encode())
