"""What each service says it publishes is a registered event on the service's own topic, and the
envelopes it sends validate against the exported JSON Schemas (what non-Python consumers rely on).

What a service sends is read from its code: every `Envelope.wrap(...)` / `Envelope(...)` it builds,
with the `producer` it passes resolved in its module. A service that builds none publishes nothing.
"""

from __future__ import annotations

import ast
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from petportal_runtime.catalog import ERASING_SERVICES
from petportal_runtime.service import ServiceRuntime
from petportal_schemas import Envelope, Event, event_class, registered_events, topics, validate_message

from .conftest import JSONSCHEMA_DIR, declared_publications

pytestmark = pytest.mark.contract

# Who may publish on each topic: a service only ever publishes on its own, and every service that
# holds client data confirms erasures on the erasure topic (docs/erasure.md).
TOPIC_OWNERS: dict[str, frozenset[str]] = {
    topics.MESSAGING: frozenset({"messaging"}),
    topics.NOTIFY: frozenset({"notify"}),
    topics.SYNC: frozenset({"sync"}),
    topics.IDENTITY: frozenset({"identity"}),
    topics.PETS: frozenset({"pets"}),
    topics.ERASURE: frozenset(ERASING_SERVICES),
}
# The runtime's erasure helpers build an envelope; the producer is the argument at this position.
RUNTIME_BUILDERS = {"erase": 1, "confirmation": 2}


def _published(service: str, built: Callable[[str], ServiceRuntime]) -> dict[str, list[type[Event]]]:
    declared = declared_publications(built(service).broker)
    return {topic: [_latest(name) for name in names] for topic, names in declared.items()}


def _latest(event_type: str) -> type[Event]:
    versions = [cls for cls in registered_events() if event_type == cls.EVENT_TYPE]
    assert versions, f"{event_type} is declared as published but is not a registered event"
    return max(versions, key=lambda cls: cls.VERSION)


@dataclass(frozen=True)
class EnvelopeSite:
    where: str  # path:line
    producer: object  # what the code passes as `producer`, resolved; None when it passes none


@cache
def envelope_sites(service: str) -> tuple[EnvelopeSite, ...]:
    """Every place in the service's package that builds an envelope, with the producer it passes."""
    package = importlib.import_module(f"petportal_{service}")
    root = Path(next(iter(package.__path__)))
    sites = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.relative_to(root).parts:
            continue
        for call in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(call, ast.Call):
                continue
            helper = call.func.id if isinstance(call.func, ast.Name) else None
            if helper in RUNTIME_BUILDERS and len(call.args) > RUNTIME_BUILDERS[helper]:
                given: ast.expr | None = call.args[RUNTIME_BUILDERS[helper]]
            elif _builds_an_envelope(call.func):
                given = next((k.value for k in call.keywords if k.arg == "producer"), None)
            else:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            module = ".".join((package.__name__, *(p for p in parts if p != "__init__")))
            sites.append(
                EnvelopeSite(f"{path.relative_to(root.parent)}:{call.lineno}", _resolve(given, module))
            )
    return tuple(sites)


def _builds_an_envelope(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):  # Envelope.wrap(...)
        return func.attr == "wrap" and isinstance(func.value, ast.Name) and func.value.id == "Envelope"
    return isinstance(func, ast.Name) and func.id == "Envelope"


def _resolve(expression: ast.expr | None, module: str) -> object:
    """The value of `producer=<expression>`: a literal, or a name (dotted) of the module's globals."""
    if expression is None or isinstance(expression, ast.Constant):
        return None if expression is None else expression.value
    if isinstance(expression, ast.Attribute):
        return getattr(_resolve(expression.value, module), expression.attr)
    namespace = importlib.import_module(module)
    unresolvable = (
        f"{module}: pass producer as a constant or a module-level name, not {ast.unparse(expression)}"
    )
    assert isinstance(expression, ast.Name), unresolvable
    assert hasattr(namespace, expression.id), unresolvable
    return getattr(namespace, expression.id)


def _sample_envelopes(
    service: str, built: Callable[[str], ServiceRuntime], samples: dict[tuple[str, int], Event]
) -> list[Envelope]:
    """One envelope per declared event, built with the producer(s) the service's own code passes."""
    published = _published(service, built)
    producers = {site.producer for site in envelope_sites(service)}
    if not producers:
        assert published == {}, f"{service} declares publications but builds no envelope: {published}"
        return []
    envelopes = []
    for producer in sorted(producers, key=repr):
        assert isinstance(producer, str), f"{service} passes producer={producer!r}"
        for classes in published.values():
            for cls in classes:
                event = samples[(cls.EVENT_TYPE, cls.VERSION)]
                client_id = None if cls.CLINIC_WIDE else "client-7"
                envelopes.append(
                    Envelope.wrap(event, clinic_id="clinic-3", client_id=client_id, producer=producer)
                )
    assert envelopes, f"{service} builds envelopes but declares no publication (document_publisher)"
    return envelopes


def test_declared_publications_are_registered_events_on_the_services_own_topic(
    service: str, built: Callable[[str], ServiceRuntime]
) -> None:
    for topic, classes in _published(service, built).items():
        assert service in TOPIC_OWNERS.get(topic, ()), f"{service} declares publishing on {topic}"
        for cls in classes:
            assert topic == cls.TOPIC, (
                f"{service} declares {cls.EVENT_TYPE} on {topic}, its topic is {cls.TOPIC}"
            )
            assert (JSONSCHEMA_DIR / f"{cls.EVENT_TYPE}.v{cls.VERSION}.json").is_file()


def test_every_event_is_declared_by_the_service_owning_its_topic(
    built: Callable[[str], ServiceRuntime],
) -> None:
    declared: set[str] = set()
    for service in set().union(*TOPIC_OWNERS.values()):
        declared |= {cls.EVENT_TYPE for classes in _published(service, built).values() for cls in classes}
    undeclared = {cls.EVENT_TYPE for cls in registered_events()} - declared
    assert not undeclared, f"registered events no service declares with document_publisher: {undeclared}"


def test_the_producer_name_is_the_service_name(service: str) -> None:
    """Envelopes say who produced them: every envelope the service's code builds names the service."""
    wrong = {site.where: site.producer for site in envelope_sites(service) if site.producer != service}
    assert not wrong, f"{service} builds envelopes with another producer: {wrong}"


def test_a_service_publishes_exactly_when_its_code_builds_envelopes(
    service: str, built: Callable[[str], ServiceRuntime]
) -> None:
    declared = _published(service, built)
    if envelope_sites(service):
        assert declared, f"{service} builds envelopes but declares no publication (document_publisher)"
    else:
        assert declared == {}, f"{service} builds no envelope but declares publications: {declared}"


def test_sample_envelopes_pass_the_runtime_validation(
    service: str, built: Callable[[str], ServiceRuntime], samples: dict[tuple[str, int], Event]
) -> None:
    for wrapped in _sample_envelopes(service, built, samples):
        parsed, event = validate_message(wrapped.to_bytes())
        assert parsed == wrapped
        assert parsed.producer == service
        assert event == samples[(wrapped.event_type, wrapped.event_version)]


def test_sample_envelopes_validate_against_the_exported_json_schemas(
    service: str, built: Callable[[str], ServiceRuntime], samples: dict[tuple[str, int], Event]
) -> None:
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema is needed to check the exported schemas"
    )
    envelope_schema = _validator(jsonschema, "Envelope.json")
    for wrapped in _sample_envelopes(service, built, samples):
        message = json.loads(wrapped.to_bytes())
        envelope_schema.validate(message)
        cls = event_class(wrapped.event_type, wrapped.event_version)
        payload_schema = _validator(jsonschema, f"{cls.EVENT_TYPE}.v{cls.VERSION}.json")
        payload_schema.validate(message["payload"])
        # ...and the schema really constrains: a payload with an unknown field is refused.
        assert not payload_schema.is_valid({**message["payload"], "unexpected": 1})


def _validator(jsonschema: Any, name: str) -> Any:
    schema = json.loads((JSONSCHEMA_DIR / name).read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)
