"""QR codes of sign-in links (segno: pure Python, PNG and SVG)."""

from __future__ import annotations

import io
from typing import Literal

import segno


def qr_code(url: str, kind: Literal["png", "svg"]) -> bytes:
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    if kind == "png":
        code.save(out, kind="png", scale=10, border=4)
    else:
        code.save(out, kind="svg", scale=10, border=4, xmldecl=True, title="Sign in to the pet portal")
    return out.getvalue()
