"""`python -m petportal_todo serve|rebuild`."""

from __future__ import annotations

import argparse
import json

from petportal_runtime.cli import Command, run_cli
from petportal_runtime.logging import configure_logging

from .bootstrap import make_read_model, make_replayer
from .service_layer.projection import rebuild
from .settings import TodoSettings


async def rebuild_command(_args: argparse.Namespace) -> int:
    settings = TodoSettings()
    configure_logging(settings.service_name, settings.log_level)
    read_model = make_read_model(settings)
    replayer = make_replayer(settings)
    try:
        applied = await rebuild(read_model, replayer)
    finally:
        await read_model.close()
    print(
        json.dumps(
            {"applied": applied, "records": replayer.stats.records, "malformed": replayer.stats.malformed}
        )
    )
    return 0


def main() -> int:
    return run_cli(
        service="todo",
        settings=TodoSettings,
        commands=[
            Command(
                "rebuild",
                "drop the To-Do read model and rebuild it from the beginning of every source topic, then "
                "move the consumer group to where the rebuild stopped. STOP THE SERVICE FIRST (all "
                "replicas): a running consumer would race the rebuild and the offset commit would fail.",
                rebuild_command,
            )
        ],
    )


if __name__ == "__main__":
    raise SystemExit(main())
