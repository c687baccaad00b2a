"""The edge every service app gets from ServiceRuntime.create_app, on a small app with one route of
each kind: JSON body, form body (FastAPI's and a raw one, as webhooks read it), query and path."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from petportal_runtime.edge import public_errors, validated_per_item
from petportal_runtime.service import ServiceRuntime
from petportal_runtime.settings import ServiceSettings
from petportal_runtime.text import MAX_JSON_DEPTH, Text, escape_text, text_problem, value_problems

pytestmark = pytest.mark.unit

LIMIT = 16 * 1024
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Note(BaseModel):
    title: str
    weight: float = 1.0
    tags: list[Any] = []


class Batch(BaseModel):
    source: str
    records: list[dict[str, Any]]


router = APIRouter()


@router.post("/notes")
async def add_note(note: Note) -> dict[str, Any]:
    return {"title": note.title, "weight": note.weight}


@router.post("/batches")
@validated_per_item("records")
async def add_batch(batch: Batch) -> dict[str, Any]:
    return {"records": len(batch.records)}


@router.post("/forms")
async def add_form(name: Annotated[str, Form()]) -> dict[str, str]:
    return {"name": name}


@router.post("/hooks")
async def hook(request: Request) -> dict[str, int]:
    return {"bytes": len(await request.body())}


@router.get("/notes/{note_id}")
async def get_note(note_id: str, q: str = "", limit: int = 10) -> dict[str, Any]:
    return {"note_id": note_id, "q": q, "limit": limit}


@asynccontextmanager
async def edge_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(service_name="edge-unit", max_request_body_bytes=LIMIT)
    app = ServiceRuntime(settings, database=False, broker=False).create_app(title="edge", routers=[router])
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with edge_client() as client:
        yield client


def errors(response: httpx.Response) -> list[tuple[list[Any], str]]:
    assert response.status_code == 422, response.text
    return [(e["loc"], e["type"]) for e in response.json()["detail"]]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- JSON bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ('{"title": "a\\u0000b"}', ["body", "title"], "string_forbidden_character"),
        ('{"title": "\\ud800"}', ["body", "title"], "string_forbidden_character"),
        ('{"title": "bell\\u0007"}', ["body", "title"], "string_forbidden_character"),
        (
            '{"title": "t", "tags": [{"k\\u0000": 1}]}',
            ["body", "tags", 0, "k\\u0000"],
            "string_forbidden_character",
        ),
        ('{"title": "t", "weight": NaN}', ["body", "weight"], "finite_number"),
        ('{"title": "t", "weight": Infinity}', ["body", "weight"], "finite_number"),
        ('{"title": "t", "weight": -Infinity}', ["body", "weight"], "finite_number"),
        ('{"title": "t", "weight": 1e999}', ["body", "weight"], "finite_number"),
        ('{"title": NaN}', ["body", "title"], "finite_number"),
        ('{"title": "t", "tags": ' + nested(MAX_JSON_DEPTH + 5) + "}", None, "json_too_deep"),
    ],
    ids=[
        "nul",
        "surrogate",
        "control",
        "nul-in-key",
        "nan",
        "inf",
        "-inf",
        "overflow",
        "nan-for-text",
        "deep",
    ],
)
async def test_json_bodies_with_refused_values_get_422_naming_the_field(
    http: httpx.AsyncClient, body: str, loc: list[Any] | None, type_: str
) -> None:
    response = await http.post("/notes", content=body.encode(), headers=JSON)
    [(where, kind)] = errors(response)
    assert kind == type_
    if loc is not None:
        assert where == loc
    assert "input" not in response.text


async def test_tab_newline_and_carriage_return_are_text(http: httpx.AsyncClient) -> None:
    response = await http.post("/notes", json={"title": "a\tb\nc\r\nd ☃ 🐕"})
    assert response.status_code == 200
    assert response.json()["title"] == "a\tb\nc\r\nd ☃ 🐕"


@pytest.mark.parametrize(
    "body",
    [
        b"{" * 10_000,
        b'{"title": ' + nested(5000).encode() + b"}",
        b'{"title": "\xff"}',
        b'{"title": "\xed\xa0\x80"}',  # a surrogate encoded as if it were a character
        b'{"title": "t", "weight": ' + b"9" * 5000 + b"}",
        b'{"title": "raw \x01 control"}',
        b"\x00",
    ],
    ids=["open-braces", "deep", "bad-utf8", "utf8-surrogate", "long-int", "raw-control", "nul-byte"],
)
async def test_unparseable_json_is_a_client_error(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post("/notes", content=body, headers=JSON)
    assert response.status_code in (400, 422), response.text
    response.json()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/octet-stream", None, FORM["content-type"]]
)
async def test_a_json_route_refuses_other_media_types(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await http.post("/notes", content=b'\xff\xfe{"title": 1}', headers=headers)
    assert response.status_code == 415
    assert response.json() == {"detail": "the body must be application/json"}


async def test_an_empty_body_is_still_a_missing_field(http: httpx.AsyncClient) -> None:
    response = await http.post("/notes")
    assert errors(response) == [(["body"], "missing")]


# --- batches validated item by item -------------------------------------------------------------


async def test_refused_values_inside_batch_items_reach_the_route(http: httpx.AsyncClient) -> None:
    body = '{"source": "pims", "records": [{"name": "a\\u0000"}, {"w": NaN}, {"x": "\\udfff"}, {"ok": 1}]}'
    response = await http.post("/batches", content=body.encode(), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json() == {"records": 4}


async def test_batch_fields_outside_the_items_and_deep_items_are_still_refused(
    http: httpx.AsyncClient,
) -> None:
    bad_source = '{"source": "p\\u0000", "records": [{"name": "a\\u0000"}]}'
    assert errors(await http.post("/batches", content=bad_source.encode(), headers=JSON)) == [
        (["body", "source"], "string_forbidden_character")
    ]
    deep = '{"source": "p", "records": [{"name": ' + nested(MAX_JSON_DEPTH) + "}]}"
    [(_, kind)] = errors(await http.post("/batches", content=deep.encode(), headers=JSON))
    assert kind == "json_too_deep"


# --- form bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/forms", "/hooks"])
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"name=a%00b", ["body", "name"]),
        (b"name=esc%1B", ["body", "name"]),
        (b"na%00me=x", ["body", "na\\u0000me"]),
    ],
    ids=["nul", "control", "nul-in-name"],
)
async def test_form_fields_with_refused_characters_get_422(
    http: httpx.AsyncClient, path: str, body: bytes, loc: list[Any]
) -> None:
    response = await http.post(path, content=body, headers=FORM)
    assert errors(response) == [(loc, "string_forbidden_character")]
    assert "input" not in response.text


@pytest.mark.parametrize(
    "body",
    [b"name=%ED%A0%80", b"name=%FF", b"name=\xff", b"&".join(b"f%d=1" % i for i in range(200))],
    ids=["surrogate", "bad-utf8-escape", "bad-utf8-byte", "too-many-fields"],
)
async def test_malformed_form_bodies_are_client_errors(http: httpx.AsyncClient, body: bytes) -> None:
    # A route reading the raw body (a webhook) gets it checked strictly; FastAPI's Form() decodes
    # bad UTF-8 as replacement characters, which are text.
    assert errors(await http.post("/hooks", content=body, headers=FORM)) == [(["body"], "form_invalid")]
    assert (await http.post("/forms", content=body, headers=FORM)).status_code in (200, 422)


async def test_good_forms_pass(http: httpx.AsyncClient) -> None:
    assert (await http.post("/forms", content=b"name=Ann+%E2%98%83%0A", headers=FORM)).json() == {
        "name": "Ann ☃\n"
    }
    assert (await http.post("/hooks", content=b"Body=STOP&From=%2B1500", headers=FORM)).json() == {
        "bytes": 22
    }


# --- query and path -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/notes/a%00b", ["path", "note_id"]),
        ("/notes/a%1Fb", ["path", "note_id"]),
        ("/notes/n1?q=%00", ["query", "q"]),
        ("/notes/n1?q=%07", ["query", "q"]),
        ("/notes/n1?unused=%00", ["query", "unused"]),
        ("/notes/n1?limit=%00", ["query", "limit"]),
    ],
)
async def test_query_and_path_values_with_refused_characters_get_422(
    http: httpx.AsyncClient, url: str, loc: list[Any]
) -> None:
    response = await http.get(url)
    assert errors(response) == [(loc, "string_forbidden_character")]
    assert "input" not in response.text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "%ED%A0%80", "%FF"])
async def test_query_values_never_get_a_server_error(http: httpx.AsyncClient, value: str) -> None:
    response = await http.get(f"/notes/n1?limit={value}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]
    text = await http.get(f"/notes/{value}?q={value}")
    assert text.status_code == 200  # undecodable bytes arrive as U+FFFD, which is text


# --- body size ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers"), [("/notes", JSON), ("/forms", FORM), ("/hooks", FORM)])
async def test_bodies_over_the_limit_get_413(
    http: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    declared = await http.post(path, content=b"x" * (LIMIT + 1), headers=headers)
    assert declared.status_code == 413
    assert declared.json() == {"detail": "request body too large"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(LIMIT // 512 + 2):
            yield b"x" * 512

    streamed = await http.post(path, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert (await http.post(path, content=b"x" * 100, headers=headers)).status_code in (200, 400, 422)


@pytest.mark.parametrize("content_type", ["image/jpeg", " IMAGE/PNG ", "image/webp; q=1"])
async def test_an_image_body_has_its_own_limit_declared_or_streamed(content_type: str) -> None:
    settings = ServiceSettings(
        service_name="edge-unit", max_request_body_bytes=LIMIT, max_image_body_bytes=4 * LIMIT
    )
    app = ServiceRuntime(settings, database=False, broker=False).create_app(title="edge", routers=[router])
    headers = {"content-type": content_type}

    async def chunks(size: int) -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(size // 512):
            yield b"x" * 512

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://edge") as http:
        # Over the limit of other bodies, within an image's: read by the route.
        within = await http.post("/hooks", content=b"x" * (2 * LIMIT), headers=headers)
        assert within.json() == {"bytes": 2 * LIMIT}
        assert (await http.post("/hooks", content=chunks(2 * LIMIT), headers=headers)).json() == {
            "bytes": 2 * LIMIT
        }
        assert (await http.post("/hooks", content=b"x" * (4 * LIMIT + 1), headers=headers)).status_code == 413
        streamed = await http.post("/hooks", content=chunks(4 * LIMIT + 1024), headers=headers)
        assert streamed.status_code == 413
        # Not an image: the ordinary limit.
        assert (await http.post("/hooks", content=chunks(2 * LIMIT), headers=JSON)).status_code == 413


# --- the formatter, the text type, logs ---------------------------------------------------------


def test_validation_errors_are_shown_without_input_and_always_serialisable() -> None:
    raw = [
        {
            "type": "string_too_long",
            "loc": ("body", "k\x00\ud800", 3),
            "msg": "bad \udc00 value \x00",
            "input": {"x": float("nan"), "y": b"\xff"},
            "ctx": {"max_length": 5, "error": ValueError("boom"), "limit": float("inf"), "why": "\x1b"},
        }
    ]
    shown = public_errors(raw)
    assert shown == [
        {
            "type": "string_too_long",
            "loc": ["body", "k\\u0000\\ud800", 3],
            "msg": "bad \\udc00 value \\u0000",
            "ctx": {"max_length": 5, "why": "\\u001b"},
        }
    ]
    json.dumps(shown, allow_nan=False).encode("utf-8")


def test_the_text_type_names_the_reason() -> None:
    adapter = TypeAdapter(Text)
    assert adapter.validate_python("Rex\t🐕") == "Rex\t🐕"
    for value, reason in [
        ("a\x00", "NUL (U+0000)"),
        ("\ud83d", "a lone surrogate (U+D83D)"),
        ("\x7f\x0b", "(U+000B)"),
    ]:
        with pytest.raises(ValidationError) as caught:
            adapter.validate_python(value)
        assert caught.value.errors()[0]["type"] == "string_forbidden_character"
        assert reason in caught.value.errors()[0]["msg"]
    assert text_problem("\x7f") is None  # DEL and C1 controls are storable and allowed
    assert escape_text("a\x00\ud800\n") == "a\\u0000\\ud800\n"


def test_value_problems_walks_any_depth_and_stops_at_the_limit() -> None:
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    [problem] = list(value_problems(deep))
    assert problem.type == "json_too_deep"
    assert len(problem.loc) == MAX_JSON_DEPTH
    assert len(list(value_problems(["\x00"] * 1000, limit=10))) == 10


def test_value_problems_come_in_document_order_each_key_before_its_value() -> None:
    value = {"a": {"b\x01": [1.5, float("nan")]}, "c": "\x00", "records": [{"d": "\x02"}]}
    found = [(p.loc, p.type) for p in value_problems(value, ("body",))]
    assert found == [
        (("body", "a", "b\\u0001"), "string_forbidden_character"),
        (("body", "a", "b\\u0001", 1), "finite_number"),
        (("body", "c"), "string_forbidden_character"),
        (("body", "records", 0, "d"), "string_forbidden_character"),
    ]
    # The items of a batch's list are left to the route (depth aside), the rest is still checked.
    assert [p.loc for p in value_problems(value, ("body",), item_lists=frozenset({"records"}))] == [
        loc for loc, _ in found[:3]
    ]
    assert [p.loc for p in value_problems(value, ("body",), limit=2)] == [loc for loc, _ in found[:2]]


async def test_refused_input_never_reaches_a_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "ann.lee@example.com"
    async with edge_client() as http:
        await http.post("/notes", content=f'{{"title": "{secret}\\u0000"}}'.encode(), headers=JSON)
        await http.post("/hooks", content=f"Body={secret}%00".encode(), headers=FORM)
        await http.get(f"/notes/{secret}?q={secret}%00")
        await http.post("/notes", content=f'{{"title": "{secret}", "weight": NaN}}'.encode(), headers=JSON)
    out = capsys.readouterr()
    assert "request" in out.out
    assert secret not in out.out + out.err
