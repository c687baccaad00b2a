"""The web portal's build: the JavaScript a phone downloads for the first screen stays within budget,
and the committed npm lock names no address."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "web" / "dist"
FIRST_SCREEN_JS_BUDGET = 100 * 1024  # gzipped bytes


def test_the_first_screens_javascript_is_within_budget() -> None:
    index = DIST / "index.html"
    assert index.is_file(), "web/dist is not built: `make web` (make test runs it first)"
    scripts = re.findall(r'<script[^>]+src="/([^"]+\.js)"', index.read_text())
    preloads = re.findall(r'<link[^>]+rel="modulepreload"[^>]+href="/([^"]+\.js)"', index.read_text())
    assert scripts, "index.html loads no script"
    total = sum(len(gzip.compress((DIST / path).read_bytes(), 9)) for path in {*scripts, *preloads})
    assert total <= FIRST_SCREEN_JS_BUDGET, f"{total} gzipped bytes of JavaScript for the first screen"


def test_the_npm_lock_holds_no_addresses() -> None:
    """No registry address (`resolved`) and no other URL (`funding`): the lock names versions and
    hashes only."""
    text = (REPO / "web" / "package-lock.json").read_text()
    lock = json.loads(text)
    assert not [name for name, entry in lock["packages"].items() if "resolved" in entry]
    assert not re.findall(r"https?://[^\s\"]+", text)
