"""A throwaway PostgreSQL server for tests and benches.

    with postgres_server() as pg:            # initdb + pg_ctl in a temp dir, a free port
        dsn = pg.create_database()           # a fresh empty database: postgresql://...
        with local_server(store=dsn) as server: ...

`local_server(store="postgresql")` (and the pytest option `--localiot-store`)
gets a fresh database on the process's shared server (`shared_server()`),
started on first use and stopped when the process exits.

The binaries come from the machine's PostgreSQL (/usr/lib/postgresql/*/bin,
Debian's `postgresql` package, or initdb on PATH). When none is there and the
process runs as root, `apt-get install -y postgresql` installs it (CI from a
fresh image); otherwise the error says what to install. initdb refuses to run
as root, so as root the cluster belongs to the `postgres` OS user (the package
creates it) and its processes run as that user.

The cluster is for throwaway data: fsync, synchronous_commit and full-page
writes are off; trust authentication on 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

SUPERUSER = "postgres"
_names = itertools.count(1)


def bindir() -> Path:
    """Where initdb / pg_ctl / postgres live; installs Debian's postgresql when root and missing."""
    found = _find_bindir()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        found = _find_bindir()
    if found is None:
        raise RuntimeError("PostgreSQL server binaries not found: install Debian's `postgresql` package "
                           "(apt-get install postgresql) or put initdb and pg_ctl on PATH")
    return found


def _find_bindir() -> Path | None:
    def version(path: str) -> tuple:
        part = Path(path).parent.parent.name
        return tuple(int(p) for p in part.split(".") if p.isdigit())

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory on a free 127.0.0.1 port."""

    def __init__(self):
        self.bin = bindir()
        self.port: int | None = None
        self._dir: str | None = None
        self._as_user = None
        self._kept: set[str] = set()
        self._lock = threading.Lock()
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SUPERUSER)  # the postgresql package creates it
            self._as_user = (entry.pw_uid, entry.pw_gid)

    @property
    def dsn(self) -> str:
        """The maintenance database's DSN (CREATE DATABASE runs there)."""
        return self.database_dsn("postgres")

    def database_dsn(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self._as_user:
            kwargs = {"user": self._as_user[0], "group": self._as_user[1], "extra_groups": []}
        return subprocess.run([str(self.bin / args[0]), *args[1:]], check=check, capture_output=True,
                              text=True, cwd=self._dir, **kwargs)

    def start(self) -> "PostgresServer":
        self._dir = tempfile.mkdtemp(prefix="localiot-pg-")
        if self._as_user:
            os.chown(self._dir, *self._as_user)
        data = os.path.join(self._dir, "data")
        self._run("initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync", "--no-instructions")
        for attempt in range(5):
            self.port = _free_port()
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self._dir} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c shared_buffers=32MB -c max_connections=300")
            done = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l",
                             os.path.join(self._dir, "server.log"), "-o", options, check=False)
            if done.returncode == 0:
                return self
        log = Path(self._dir, "server.log")
        raise RuntimeError(f"PostgreSQL did not start: {done.stderr}\n{log.read_text() if log.exists() else ''}")

    def stop(self) -> None:
        if self._dir is None:
            return
        self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", os.path.join(self._dir, "data"), check=False)
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; its DSN."""
        name = name or f"localiot_{os.getpid()}_{next(_names)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.database_dsn(name)

    def database_for(self, key: str) -> str:
        """The database that belongs to `key` (a data directory): created on first use, then the same one."""
        name = "localiot_dir_" + hashlib.sha1(key.encode()).hexdigest()[:16]
        with self._lock:
            if name not in self._kept:
                self.create_database(name)
                self._kept.add(name)
        return self.database_dsn(name)

    def drop_database(self, dsn: str) -> None:
        name = dsn.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def postgres_server():
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


_shared: PostgresServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """The process's throwaway server, started on first use, stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PostgresServer().start()
            atexit.register(stop_shared_server)
        return _shared


def stop_shared_server() -> None:
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.stop()
            _shared = None
