from collections.abc import Iterator

import pytest

from .stack import Stack


@pytest.fixture(scope="session")
def stack(
    postgres_server_url: str, mongo_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(postgres_server_url, mongo_url, tmp_path_factory.mktemp("e2e"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
