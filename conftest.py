import pytest

pytest_plugins = ["petportal_devkit.testing"]

LAYERS = ("unit", "contract", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one layer, so `make test` can run and report them layer by layer."""
    for item in items:
        layers = [m.name for m in item.iter_markers() if m.name in LAYERS]
        if len(layers) != 1:
            raise pytest.UsageError(f"{item.nodeid}: mark it with exactly one of {LAYERS} (has {layers})")
