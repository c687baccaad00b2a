from pathlib import Path

from petportal_runtime.cli import run_cli

from .bootstrap import build_runtime
from .entrypoints.cli import CREATE_STAFF
from .settings import IdentitySettings


def main() -> int:
    return run_cli(
        service="identity",
        app_factory="petportal_identity.entrypoints.app:create_app",
        settings=IdentitySettings,
        runtime=build_runtime,
        migrations_dir=Path(__file__).parent / "migrations",
        default_port=8081,
        commands=[CREATE_STAFF],
    )


if __name__ == "__main__":
    raise SystemExit(main())
