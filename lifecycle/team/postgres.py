"""The stack's PostgreSQL: a cluster of its own under the stack directory, run by an unprivileged user (PostgreSQL
refuses root), listening on TCP only, password authentication; the password lives in a pgpass file that libpq
(psycopg2) reads, so it is in no URI and no process list."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lifecycle.team.processes import StackError, tail
from lifecycle.team.secrets import read_or_create, write_private
from lifecycle.team.system_packages import can_install, install_debian_package

DB_USER = "mlflow"
SERVER_USER = "postgres"  # the account Debian's package creates, used when we are root
BINARY_ROOTS = ("/usr/lib/postgresql",)  # Debian/Ubuntu: /usr/lib/postgresql/<major>/bin


def find_binaries() -> Path | None:
    """The bin directory of the newest installed PostgreSQL server, or of `pg_ctl` on PATH."""
    for root in BINARY_ROOTS:
        majors = sorted(Path(root).glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name), reverse=True)
        if majors:
            return majors[0].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def ensure_installed() -> Path:
    """The server binaries, installing Debian's `postgresql` package when they are missing and we are root."""
    found = find_binaries()
    if found:
        return found
    if not can_install():
        raise StackError(
            "PostgreSQL's server is not installed: install the `postgresql` package "
            "(Debian/Ubuntu: sudo apt-get install postgresql) or point MLFLOW_TRACKING_URI at an existing server"
        )
    install_debian_package("postgresql")
    found = find_binaries()
    if not found:
        raise StackError("installed the `postgresql` package but found no pg_ctl under /usr/lib/postgresql")
    return found


@dataclass(frozen=True)
class Postgres:
    root: Path  # <stack>/postgres: data/, the log, the pgpass file
    host: str
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "log" / "postgres.log"  # in a directory of its own: the server's account writes it

    @property
    def pgpass_path(self) -> Path:
        return self.root / "pgpass"

    def uri(self, database: str) -> str:
        """A SQLAlchemy URI without the password (libpq finds it in PGPASSFILE). psycopg2, the driver MLflow is tested
        with: psycopg 3 binds parameters typed, and PostgreSQL then refuses MLflow's comparison of the integer
        version column with a string when a stage transition archives the other versions."""
        return f"postgresql+psycopg2://{DB_USER}@{self.host}:{self.port}/{database}"

    def client_env(self) -> dict[str, str]:
        return {"PGPASSFILE": str(self.pgpass_path)}

    def start(self, databases: tuple[str, ...]) -> None:
        """Initialise the cluster on first start, start it, and create `databases` that do not exist yet."""
        binaries = ensure_installed()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # the server's account passes through to data/ and log/, lists nothing
        password = read_or_create(self.root / "password")
        write_private(self.pgpass_path, f"*:{self.port}:*:{DB_USER}:{password}\n")
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(binaries, password)
        if not self.is_running(binaries):
            self._as_server_user(binaries / "pg_ctl", "-D", self.data_dir, "-l", self.log_path, "-w", "-t", "120",
                                 "-o", f"-c listen_addresses={self.host} -p {self.port} -c unix_socket_directories=''",
                                 "start", what="starting PostgreSQL")  # fmt: skip
        for database in databases:
            self._create_database(binaries, database)

    def stop(self) -> bool:
        binaries = find_binaries()
        if binaries is None or not self.is_running(binaries):
            return False
        self._as_server_user(binaries / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "stop",
                             what="stopping PostgreSQL")  # fmt: skip
        return True

    def is_running(self, binaries: Path | None = None) -> bool:
        binaries = binaries or find_binaries()
        if binaries is None or not (self.data_dir / "PG_VERSION").exists():
            return False
        status = subprocess.run(self._server_user_prefix() + [str(binaries / "pg_ctl"), "-D", str(self.data_dir),
                                "status"], capture_output=True, text=True)  # fmt: skip
        return status.returncode == 0

    def _initdb(self, binaries: Path, password: str) -> None:
        """A fresh cluster whose superuser is DB_USER with the generated password; the data directory belongs to
        the server's account when we are root."""
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-made cluster from an interrupted first start
        self.data_dir.mkdir(mode=0o700)
        self.log_path.parent.mkdir(mode=0o700, exist_ok=True)
        password_file = self.log_path.parent / "initdb-password"  # private to the server's account, gone after initdb
        write_private(password_file, password + "\n")
        try:
            if os.geteuid() == 0:
                self._check_reachable_by_server_user()
                for owned in (self.data_dir, password_file, self.log_path.parent):
                    shutil.chown(owned, SERVER_USER, SERVER_USER)
            self._as_server_user(binaries / "initdb", "-D", self.data_dir, "-U", DB_USER, f"--pwfile={password_file}",
                                 "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8",
                                 "--locale=C.UTF-8", what="initialising PostgreSQL")  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)

    def _create_database(self, binaries: Path, database: str) -> None:
        env = {**os.environ, **self.client_env(), "PGCONNECT_TIMEOUT": "10"}
        connect = ["-h", self.host, "-p", str(self.port), "-U", DB_USER, "-d", "postgres"]
        exists = subprocess.run([str(binaries / "psql"), *connect, "-tAc",
                                 f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],
                                env=env, capture_output=True, text=True)  # fmt: skip
        if exists.returncode != 0:
            raise StackError(f"cannot connect to PostgreSQL on {self.host}:{self.port}: {exists.stderr.strip()}")
        if exists.stdout.strip() != "1":
            created = subprocess.run([str(binaries / "createdb"), *connect[:-2], database],
                                     env=env, capture_output=True, text=True)  # fmt: skip
            if created.returncode != 0:
                raise StackError(f"creating database {database!r} failed: {created.stderr.strip()}")

    def _server_user_prefix(self) -> list[str]:
        return ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []

    def _as_server_user(self, *command, what: str) -> None:
        done = subprocess.run(self._server_user_prefix() + [str(part) for part in command],
                              capture_output=True, text=True, cwd="/")  # fmt: skip
        if done.returncode != 0:
            detail = done.stderr.strip() or done.stdout.strip()
            raise StackError(f"{what} failed: {detail}\nits log ({self.log_path}):\n{tail(self.log_path)}")

    def _check_reachable_by_server_user(self) -> None:
        reachable = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-x", str(self.root)], cwd="/")
        if reachable.returncode != 0:
            raise StackError(
                f"the {SERVER_USER!r} account cannot reach {self.root}: PostgreSQL runs as that account, so every "
                "directory above the stack needs the execute bit for others (chmod o+x), or choose another --dir"
            )
