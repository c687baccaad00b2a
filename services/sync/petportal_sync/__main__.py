from pathlib import Path

from petportal_runtime.cli import run_cli

from .bootstrap import build_runtime
from .entrypoints.cli import CREATE_CLINIC
from .settings import SyncSettings


def main() -> int:
    return run_cli(
        service="sync",
        app_factory="petportal_sync.entrypoints.app:create_app",
        settings=SyncSettings,
        runtime=build_runtime,
        migrations_dir=Path(__file__).parent / "migrations",
        default_port=8085,
        commands=[CREATE_CLINIC],
    )


if __name__ == "__main__":
    raise SystemExit(main())
