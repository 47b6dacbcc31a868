"""A real PostgreSQL server for the shared store's tests (and bench/bench_ledger_pg.py): Debian's ``postgresql``.

A cluster is made in a temporary directory (initdb) and started (pg_ctl) on a free loopback port, with a superuser
that logs in by password, so the tests see a DSN with a password in it. PostgreSQL refuses to run as root: as root
(CI), initdb and the server run as the ``postgres`` account the Debian package creates, through ``runuser``, and the
directory is given to it. ``.ci/run`` installs the package. :func:`unavailable` says why no server can be started
here, for a test's skip reason.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "proximo_test"


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def unavailable() -> str | None:
    """Why no server can be started here (None: one can)."""
    if _bindir() is None:
        return "no PostgreSQL binaries (apt-get install postgresql; .ci/run does)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, which PostgreSQL refuses, and there is no postgres account to run it as"
        if shutil.which("runuser") is None:
            return "running as root and no runuser to start PostgreSQL as the postgres account"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary directory, on a loopback port."""

    def __init__(self, *, durable: bool = False) -> None:
        """``durable``: fsync as a production server does (a benchmark's figures); tests run without it."""
        bindir = _bindir()
        assert bindir is not None, unavailable()
        self.bindir = bindir
        self.password = "pw-" + secrets.token_hex(12)
        self.dir = Path(tempfile.mkdtemp(prefix="proximo-pg-"))
        self.data = self.dir / "data"
        self.port = 0
        self.durable = durable
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self.bindir / tool), *args], capture_output=True, text=True, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        """Start (or start again, on the port it had): a port taken meanwhile by another process is replaced."""
        for _ in range(5):
            port = self.port or _free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60", "start", "-o",
                          f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=60"
                          + ("" if self.durable else " -c fsync=off"))
            except RuntimeError:
                if self.port:  # a restart keeps its port: the DSNs the test holds name it
                    raise
                continue
            self.port = port
            return
        raise RuntimeError(f"PostgreSQL would not start: {(self.dir / 'log').read_text()[-2000:]}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A database of its own for one test; its DSN."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def close(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
