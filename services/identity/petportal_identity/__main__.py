from petportal_runtime.cli import run_cli

from .bootstrap import build_runtime
from .entrypoints.cli import CREATE_STAFF, RESET_STAFF_PASSWORD, UNLOCK_STAFF
from .settings import IdentitySettings


def main() -> int:
    return run_cli(
        service="identity",
        settings=IdentitySettings,
        runtime=build_runtime,
        commands=[CREATE_STAFF, UNLOCK_STAFF, RESET_STAFF_PASSWORD],
    )


if __name__ == "__main__":
    raise SystemExit(main())
