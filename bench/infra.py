"""The embedded infrastructure of one benchmark run, all on 127.0.0.1.

One nx-27017 (MongoDB) and one embedded PostgreSQL serve the whole run (each benchmark uses its own
databases on them); every benchmark gets a fresh Tansu broker, so topics start empty.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from petportal_devkit.devinfra import LocalKafka, LocalMongo, LocalPostgres, create_topics, free_port
from petportal_schemas import topics

from .procs import ChildProcess, python_env
from .report import REPO_ROOT

SERVICES_DIR = REPO_ROOT / "services"
LOOPBACK = "127.0.0.1"


def service_available(name: str) -> tuple[bool, str]:
    """Whether `python -m petportal_<name> serve` can work: its package, CLI and app module exist."""
    package = SERVICES_DIR / name / f"petportal_{name}"
    missing = [
        str(p.relative_to(REPO_ROOT))
        for p in (package / "__main__.py", package / "entrypoints" / "app.py")
        if not p.exists()
    ]
    return (not missing, f"missing {', '.join(missing)}" if missing else "ok")


class Infra:
    def __init__(self, workdir: Path | None = None, *, keep: bool = False) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="petportal-bench-")).resolve()
        self.keep = keep
        self.logs = self.workdir / "logs"
        self.mongo = LocalMongo(self.workdir / "mongo", log_file=self.logs / "nx-27017.out")
        # durable=True: fsync on, as `make run` runs it (one commit per batch, so it costs little).
        self.postgres = LocalPostgres(self.workdir / "pg")
        self._kafkas: list[LocalKafka] = []
        self._children: list[ChildProcess] = []
        self._postgres_started = False

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.mongo.start()
        return self

    def ensure_postgres(self) -> LocalPostgres:
        if not self._postgres_started:
            self.postgres.start()
            self._postgres_started = True
        return self.postgres

    async def fresh_kafka(self, name: str, source_topics: Sequence[str] = topics.ALL) -> LocalKafka:
        """A new, empty Tansu broker with the project's topics (3 partitions each)."""
        kafka = LocalKafka(log_file=self.logs / f"tansu-{name}.out").start()
        self._kafkas.append(kafka)
        await create_topics(kafka.bootstrap, source_topics)
        return kafka

    def stop_kafka(self, kafka: LocalKafka) -> None:
        kafka.stop()
        if kafka in self._kafkas:
            self._kafkas.remove(kafka)

    def service_command(self, service: str, command: Sequence[str], env: Mapping[str, str]) -> ChildProcess:
        """`python -m petportal_<service> <command>` (e.g. migrate), not started."""
        return self.child(
            f"{service}-{command[0]}",
            f"petportal_{service}",
            command,
            {"ENVIRONMENT": "development", **env},
            python_path=[SERVICES_DIR / service],
        )

    def child(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        python_path: Sequence[Path] = (),
        capture_stdout: bool = False,
    ) -> ChildProcess:
        """A child process (not started yet) whose log goes to logs/<name>.log; stopped by close()."""
        proc = ChildProcess(
            name,
            module,
            args,
            env=python_env(env, python_path=python_path),
            log_file=self.logs / f"{name}.log",
            stdout_file=self.logs / f"{name}.stdout" if capture_stdout else None,
        )
        self._children.append(proc)
        return proc

    def service(
        self, service: str, env: Mapping[str, str], *, label: str | None = None, port: int | None = None
    ) -> tuple[ChildProcess, int]:
        """`python -m petportal_<service> serve --host 127.0.0.1 --port P` with `env` (not started)."""
        port = port or free_port()
        proc = self.child(
            label or service,
            f"petportal_{service}",
            ["serve", "--host", LOOPBACK, "--port", str(port)],
            {"ENVIRONMENT": "development", "LOG_LEVEL": "INFO", **env},
            python_path=[SERVICES_DIR / service],
        )
        return proc, port

    def stop_benchmark_processes(self) -> None:
        """Stop every child and broker started so far (between benchmarks: nothing left running)."""
        for proc in reversed(self._children):
            proc.stop()
        self._children.clear()
        for kafka in self._kafkas:
            kafka.stop()
        self._kafkas.clear()

    def close(self, *, failed: bool = False) -> None:
        self.stop_benchmark_processes()
        if self._postgres_started:
            self.postgres.stop()
            self._postgres_started = False
        self.mongo.stop()
        if not (self.keep or failed):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(failed=exc is not None)


def postgres_dsn(server: LocalPostgres, dbname: str) -> str:
    """A plain `postgresql://` DSN for asyncpg (the runtime's URLs carry `+asyncpg` for SQLAlchemy)."""
    return server.url(dbname).replace("postgresql+asyncpg://", "postgresql://", 1)
