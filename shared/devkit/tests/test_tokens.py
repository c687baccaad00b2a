"""The test token minter signs tokens the runtime's verifier accepts, as identity's."""

from __future__ import annotations

import pytest

from petportal_devkit.tokens import TokenMinter
from petportal_runtime.auth import TokenVerifier

pytestmark = pytest.mark.unit


async def test_parent_and_staff_tokens_verify_with_the_minters_key_only() -> None:
    minter = TokenMinter()
    parent = await minter.verifier.verify(minter.parent("c-1", "k-1"))
    staff = await minter.verifier.verify(minter.staff("c-1"))

    assert (parent.role, parent.clinic_id, parent.client_id, parent.sub) == (
        "parent",
        "c-1",
        "k-1",
        "acct-k-1",
    )
    assert (staff.role, staff.clinic_id, staff.client_id) == ("staff", "c-1", None)
    assert minter.parent_headers("c-1", "k-1")["Authorization"].startswith("Bearer ")
    with pytest.raises(Exception):  # noqa: B017, PT011 - whichever error the verifier raises
        await TokenVerifier(None, static_jwks=TokenMinter().jwks).verify(minter.parent())
