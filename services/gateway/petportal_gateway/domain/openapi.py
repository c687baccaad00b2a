"""The gateway's one OpenAPI document: its own routes and every route it forwards, taken from the
services' own documents (no I/O). The web portal's typed client and a mobile app read it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .routing import resolve

_PARAM = re.compile(r"\{[^}/]+\}")


def forwarded_to(path: str) -> str | None:
    """The service the gateway sends a path template of the documents to (None: not public)."""
    route = resolve(_PARAM.sub("x", path))
    return route.upstream if route is not None else None


def merge(
    own: Mapping[str, Any], services: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """`own` with the paths each service's document has that the gateway forwards to that service,
    and their schemas. A schema name two services define differently keeps the first definition and is
    reported (the contract tests keep the committed documents free of such clashes)."""
    merged: dict[str, Any] = {
        **own,
        "info": {
            **own.get("info", {}),
            "title": "Pet Portal",
            "description": "Every route the gateway serves.",
        },
        "paths": dict(own.get("paths", {})),
        "components": {
            **own.get("components", {}),
            "schemas": dict(own.get("components", {}).get("schemas", {})),
        },
    }
    clashes: list[str] = []
    schemas = merged["components"]["schemas"]
    for service, document in sorted(services.items()):
        for path, item in document.get("paths", {}).items():
            if forwarded_to(path) == service:
                merged["paths"][path] = item
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                clashes.append(f"{service}:{name}")
                continue
            schemas[name] = schema
        for name, scheme in document.get("components", {}).get("securitySchemes", {}).items():
            merged["components"].setdefault("securitySchemes", {}).setdefault(name, scheme)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged, clashes
