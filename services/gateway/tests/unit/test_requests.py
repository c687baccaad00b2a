import pytest

from petportal_gateway.domain.requests import RejectedRequest, check_headers, check_target

pytestmark = pytest.mark.unit

FORWARDED = frozenset({b"authorization", b"content-type"})


@pytest.mark.parametrize(
    ("raw_path", "query"),
    [
        (b"/api/v1/pets", b""),
        (b"/api/v1/pets/%C3%A9t%C3%A9", b"q=caf%C3%A9&tag=a+b"),
        (b"/pims/v1/records/a%2Fb", b"x=%25"),  # escapes of "/" and "%" are fine
        (b"/api/v1/pets/'quoted'(1)", b"a=[1]&b={2}"),
    ],
)
def test_well_formed_targets_pass(raw_path: bytes, query: bytes) -> None:
    check_target(raw_path, query)


@pytest.mark.parametrize(
    ("raw_path", "query", "status", "detail"),
    [
        (b"*", b"", 400, "the request target must be a path"),
        (b"http://evil.example/api/v1/pets", b"", 400, "the request target must be a path"),
        (b"/a/" + b"x" * 8200, b"", 414, "request target too long"),
        (b"/a", b"q=" + b"x" * 8200, 414, "request target too long"),
        (b"/a/\xc3\xa9", b"", 400, "invalid character in the path"),
        (b"/a b", b"", 400, "invalid character in the path"),
        (b"/a", b"q=a#b", 400, "invalid character in the query"),
        (b"/a/%zz", b"", 400, "invalid percent-encoding in the path"),
        (b"/a/%4", b"", 400, "invalid percent-encoding in the path"),
        (b"/a", b"q=100%", 400, "invalid percent-encoding in the query"),
        (b"/a/%ff", b"", 400, "the path is not UTF-8 once decoded"),
        (b"/a", b"q=%C3", 400, "the query is not UTF-8 once decoded"),
        (b"/a/%00", b"", 400, "control character in the path"),
        (b"/a", b"q=%0D%0A", 400, "control character in the query"),
        (b"/a", b"q=%7F", 400, "control character in the query"),
        (b"/a/%C2%85", b"", 400, "control character in the path"),  # NEL, a C1 control
    ],
)
def test_targets_that_cannot_be_routed_exactly_are_refused(
    raw_path: bytes, query: bytes, status: int, detail: str
) -> None:
    with pytest.raises(RejectedRequest) as refused:
        check_target(raw_path, query)
    assert (refused.value.status, refused.value.detail) == (status, detail)


def test_forwarded_header_values_must_be_visible_ascii() -> None:
    check_headers([(b"authorization", b"Bearer a.b.c"), (b"user-agent", b"caf\xc3\xa9")], FORWARDED)
    for value in (b"Bearer \xff", b"text/\x01plain", b"a\x00"):
        with pytest.raises(RejectedRequest) as refused:
            check_headers([(b"content-type", value)], FORWARDED)
        assert (refused.value.status, refused.value.detail) == (400, "invalid content-type header")


def test_headers_are_bounded_in_total() -> None:
    check_headers([(b"x-a", b"a" * 16_000), (b"x-b", b"b" * 16_000)], FORWARDED)
    with pytest.raises(RejectedRequest) as refused:
        check_headers([(b"x-a", b"a" * 16_000), (b"x-b", b"b" * 17_000)], FORWARDED)
    assert refused.value.status == 431
