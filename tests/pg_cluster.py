"""A throwaway PostgreSQL + PostGIS cluster for the tests and the store benchmark: made, used, removed.

Why a cluster of our own and not the machine's server: the tests must not need a configured
server, a password or a free port, and must leave nothing behind. ``initdb`` makes a cluster in a
temporary directory; ``pg_ctl`` starts it listening on a unix socket in that directory only (no TCP,
so no port to collide with another run); :meth:`Cluster.stop` stops it and removes the directory.
PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` OS user (the
Debian package creates it) and its commands run through ``runuser``.

Access: the ``postgres`` superuser connects without a password over the socket; every other role
must give its password (``scram-sha-256``), so a wrong password is a real authentication failure.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

#: the database every test database is copied from (PostGIS already created in it)
TEMPLATE = "gg_template"


class ClusterUnavailableError(RuntimeError):
    """PostgreSQL or PostGIS is not installed here (the message says what to install)."""


def bindir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` with ``initdb`` and ``pg_ctl`` (Debian's layout)."""
    found = sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "initdb").is_file()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise ClusterUnavailableError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                                 "apt-get install --no-install-recommends postgresql postgresql-postgis")
    return found[-1]


class Cluster:
    """One throwaway cluster.

    Parameters
    ----------
    durable
        False (the tests): ``fsync=off``, since a throwaway cluster need not survive a power cut and the
        tests run faster. True (the benchmark): PostgreSQL's defaults, so a commit waits for the disk as
        it does in production.
    """

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.dir: Path | None = None
        self._prefix: list[str] = []
        self._bin = Path()

    @property
    def socket_dir(self) -> Path:
        assert self.dir is not None, "cluster not started"
        return self.dir

    def url(self, database: str = "postgres", *, user: str = "postgres", password: str | None = None) -> str:
        """A libpq URL for ``database`` over the cluster's socket."""
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"postgresql://{auth}@/{quote(database, safe='')}?host={quote(str(self.socket_dir), safe='/')}"

    def _run(self, *cmd: str) -> str:
        proc = subprocess.run([*self._prefix, *cmd], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")
        return proc.stdout

    def start(self) -> Cluster:
        """initdb, start, and make the PostGIS template; on any failure nothing is left running."""
        self._bin = bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="gridgeo-pg-"))
        if os.geteuid() == 0:
            self._as_postgres()
        data = self.dir / "data"
        try:
            self._run(str(self._bin / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C",
                      "--no-sync", "--auth-local=trust", "--auth-host=reject")
            (data / "pg_hba.conf").write_text("local all postgres trust\nlocal all all scram-sha-256\n",
                                              encoding="utf-8")
            settings = {"listen_addresses": "''", "unix_socket_directories": f"'{self.dir}'",
                        "max_connections": "60", "log_min_messages": "warning"}
            if not self.durable:
                settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
            with open(data / "postgresql.conf", "a", encoding="utf-8") as f:
                f.writelines(f"{k} = {v}\n" for k, v in settings.items())
            self._run(str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"), "-w",
                      "-t", "60", "start")
            self._template()
        except BaseException:
            self.stop()
            raise
        log.info("throwaway PostgreSQL cluster at %s (%s)", self.dir, self._bin)
        return self

    def _as_postgres(self) -> None:
        """As root: hand the directory to the ``postgres`` OS user and run the server's commands as it."""
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterUnavailableError("running as root and there is no 'postgres' OS user to own the cluster "
                                     "(the Debian postgresql package creates it)") from None
        runuser = shutil.which("runuser") or shutil.which("setpriv")
        if runuser is None:
            raise ClusterUnavailableError("running as root and neither runuser nor setpriv is installed")
        assert self.dir is not None
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        if runuser.endswith("runuser"):
            self._prefix = [runuser, "-u", "postgres", "--"]
        else:
            self._prefix = [runuser, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--"]

    def _template(self) -> None:
        """The template database with PostGIS (a missing PostGIS says so)."""
        import psycopg

        self.sql(f"CREATE DATABASE {TEMPLATE}")
        try:
            with psycopg.connect(self.url(TEMPLATE), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION postgis")
        except psycopg.Error as exc:
            raise ClusterUnavailableError(f"PostGIS is not available to {self._bin.parent.name} ({exc}): "
                                     "apt-get install --no-install-recommends postgresql-postgis") from None

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self, name: str) -> str:
        """A fresh database (a copy of the PostGIS template): its URL."""
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending any connection a test left open to it."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and remove the directory; safe to call twice."""
        if self.dir is None:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                try:
                    self._run(str(self._bin / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", "30", "stop")
                    break
                except RuntimeError as exc:
                    log.warning("stopping the throwaway cluster (%s): %s", mode, exc)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
