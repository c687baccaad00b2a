from petportal_runtime.cli import run_cli

from .bootstrap import build_runtime
from .entrypoints.cli import (
    CREATE_CLINIC,
    PURGE_REJECTIONS,
    RECONCILE,
    REPLAY_REJECTIONS,
    REVOKE_API_KEY,
    ROTATE_API_KEY,
)
from .settings import SyncSettings


def main() -> int:
    return run_cli(
        service="sync",
        settings=SyncSettings,
        runtime=build_runtime,
        commands=[
            CREATE_CLINIC,
            RECONCILE,
            REPLAY_REJECTIONS,
            PURGE_REJECTIONS,
            ROTATE_API_KEY,
            REVOKE_API_KEY,
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
